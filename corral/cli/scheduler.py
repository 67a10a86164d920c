"""``corral scheduler --profile NAME``: run a scheduler profile as its own process; ``corral schedulers``:
list the cell's profiles with what each did (corral/master/README.md, docs/operating.md)."""

from __future__ import annotations

import json

import typer


def _table(rows: list[dict]) -> None:
    typer.echo(f"{'PROFILE':<16} {'WHERE':<9} {'POLICY':<14} {'JOBS':>5} {'PENDING':>8} {'ROUNDS':>7} "
               f"{'PLACED':>7} {'CONFLICTS':>9} {'RETRIES':>7}  BACKOFF")
    for r in rows:
        backoff = r["backoff"]
        off = f"{backoff['remaining_s']:.2f}s (streak {backoff['streak']})" if backoff["streak"] else "-"
        typer.echo(f"{r['name']:<16} {'external' if r['external'] else 'master':<9} {r['policy'] or '(cell)':<14} "
                   f"{r['jobs']:>5} {r['pending_tasks']:>8} {r['rounds']:>7} {r['placements']:>7} "
                   f"{r['conflicts']:>9} {r['retries']:>7}  {off}")


def register(app: typer.Typer) -> None:
    @app.command("schedulers")
    def schedulers(output: str = typer.Option("text", "--output", "-o", help="text or json")) -> None:
        """List the scheduler profiles: jobs owned, rounds, placements, conflicts, retries, backoff."""
        from corral.cli.connect import api, die

        if output not in ("text", "json"):
            die("schedulers", f"--output: expected text or json, got {output!r}")
        reply = api("schedulers", lambda c: c.schedulers())
        if output == "json":
            typer.echo(json.dumps(reply, indent=2))
        else:
            _table(reply["schedulers"])

    @app.command("scheduler")
    def scheduler(
        profile: str = typer.Option(..., "--profile", help="the profile to run (one marked external: true in "
                                                          "the cell configuration)"),
        master: str = typer.Option(None, "--master", help="the master's URL (several: comma-separated); "
                                                         "default: CORRAL_ADDR or the CLI config"),
        token: str = typer.Option(None, "--token", envvar="CORRAL_SCHEDULER_TOKEN",
                                  help="an admin or scheduler token; default: CORRAL_TOKEN or the CLI config"),
        policy: str = typer.Option(None, "--policy", help="plan with this policy instead of the profile's"),
        interval: float = typer.Option(0.5, "--interval", help="seconds between rounds (at least)"),
        rounds: int = typer.Option(0, "--rounds", help="stop after this many rounds (0: run until SIGTERM)"),
    ) -> None:
        """Run one scheduler profile as its own process: it reads the profile's snapshot from the
        master, plans, and commits its plans through the API (Omega's shared-state schedulers)."""
        import signal
        import threading

        from corral.cli.config import ClientConfigError, client_ca, client_settings
        from corral.cli.connect import die
        from corral.client.errors import BAD_INPUT, ApiError
        from corral.client.transport import Transport

        if not interval > 0:
            die("scheduler", f"--interval: expected a number of seconds > 0, got {interval}")
        if rounds < 0:
            die("scheduler", f"--rounds: expected 0 or more, got {rounds}")
        if policy is not None:
            from corral.cli.master import check_policy

            check_policy(policy, command="scheduler")
        try:
            if master is None or token is None:
                addr, configured = client_settings()
                master, token = master or addr, token or configured
        except ClientConfigError as e:
            die("scheduler", str(e))
        from corral.master.external import ExternalScheduler

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        with Transport(master, token, ca=client_ca()) as transport:
            loop = ExternalScheduler(profile, lambda path: transport.call("GET", path),
                                     lambda path, body: transport.call("POST", path, json=body), policy=policy)
            try:
                first = transport.call("GET", f"/schedulers/{profile}/snapshot")
            except ApiError as e:
                die("scheduler", e.message, e.code)
            typer.echo(f"corral scheduler: profile {profile} against {transport.addr} "
                       f"(policy {policy or first['policy']})", err=True)
            def passing(e: Exception) -> bool:  # the master unreachable or failing: try again later
                if isinstance(e, ApiError) and e.code != BAD_INPUT:
                    typer.echo(f"corral scheduler: {e.message}; trying again", err=True)
                    return True
                return False

            try:
                counts = loop.run(interval, stop.wait, stop.is_set, rounds or None, passing)
            except ApiError as e:
                die("scheduler", e.message, e.code)
        typer.echo(json.dumps({"profile": profile, "rounds": counts.rounds, "placed": counts.placed,
                               "conflicts": counts.conflicts, "retries": counts.retries,
                               "backoffs": counts.backoffs}))
