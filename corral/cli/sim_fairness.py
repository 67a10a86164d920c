"""``corral sim fairness``: one trace replayed under each queue order; how fairly users share the cell."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from corral.cli.sim import fail, load_trace_or_fail


def parse_orders(text: str) -> list[str]:
    from corral.sched.queue import USER_ORDERS

    orders = [o.strip() for o in text.split(",") if o.strip()]
    bad = [o for o in orders if o not in USER_ORDERS]
    if not orders or bad or len(set(orders)) != len(orders):
        fail(f"--order: expected distinct names among {', '.join(USER_ORDERS)}, comma-separated; got {text!r}")
    return orders


def register(sim: typer.Typer) -> None:
    @sim.command()
    def fairness(
        trace: str = typer.Option("synthetic", help="a trace as corral sim replay takes it: openb, alibaba-batch, "
                                  "synthetic[:machines=N,tasks=N,hours=H], a native .jsonl file, ..."),
        path: Path = typer.Option(None, help="the trace's file or folder [default: ../shared/traces/...]"),
        order: str = typer.Option("drf,round-robin", help="queue orders to compare, comma-separated"),
        policy: str = typer.Option(None, help="the scheduler's policy [default: hybrid]"),
        seed: int = typer.Option(0, min=0, help="seed of the scheduler (and of seeded traces)"),
        until: float = typer.Option(None, min=0, help="stop at this simulated second"),
        sample_interval: float = typer.Option(None, min=0.001, help="simulated seconds between samples "
                                              "[default: 1/500 of the trace]"),
        out: Path = typer.Option(Path("sim-out"), help="folder for the JSON, CSV and PNG outputs"),
        as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object on the last line"),
    ) -> None:
        """Per-user dominant share over time, Jain's index and pending delay per user, for each queue order."""
        from rich.console import Console
        from rich.table import Table

        from corral.cli.sim_replay import _safe, check_policy_or_fail
        from corral.sched.policy import DEFAULT_POLICY
        from corral.sim.fairness import fairness as run_fairness
        from corral.sim.fairness_report import write_fairness
        from corral.sim.replay import ReplayConfig

        orders = parse_orders(order)
        policy = policy or DEFAULT_POLICY
        check_policy_or_fail(policy)
        console = Console(stderr=True)
        with console.status(f"loading trace {trace}"):
            loaded = load_trace_or_fail(trace, path, seed)
        config = ReplayConfig(policy=policy, seed=seed, until=until, sample_interval_s=sample_interval)
        with console.status("replaying") as status:
            summary, runs = run_fairness(loaded, orders, config, lambda o, now, end: status.update(
                f"replaying {loaded.name} with {o}: {100 * now / end if end else 100:.0f} %"))
        paths = write_fairness(summary, runs, out, f"fairness_{_safe(loaded.name)}_{seed}")
        table = Table(title=f"fairness on {summary['trace']} ({summary['machines']:,} machines, "
                            f"{summary['tasks']:,} tasks), seed {seed}")
        for column in ("order", "Jain mean", "Jain min", "contended samples", "pending delay mean / p90 s",
                       "spread of users' mean delay s", "placements", "pending at end"):
            table.add_column(column, justify="right")
        for name, f in summary["orders"].items():
            table.add_row(name, _fmt(f["jain_mean"], 3), _fmt(f["jain_min"], 3), str(f["contended_samples"]),
                          f"{f['pending_delay_mean_s']:.1f} / {f['pending_delay_p90_s']:.1f}",
                          _fmt(f["user_delay_mean_spread_s"], 1), f"{f['placements']:,}", f"{f['pending_at_end']:,}")
        screen = Console(width=140)  # the table's columns stay readable in a log or a narrow terminal
        screen.print(table)
        users = Table(title="heaviest users: mean dominant share % / mean pending delay s, per order")
        users.add_column("user")
        for name in summary["orders"]:
            users.add_column(name, justify="right")
        for user in summary["heaviest_users"]:
            cells = []
            for f in summary["orders"].values():
                row = f["per_user"].get(user)
                cells.append(f"{100 * row['share_mean']:.2f} / {row['pending_delay_mean_s']:.1f}" if row else "")
            users.add_row(user, *cells)
        screen.print(users)
        for note in summary["notes"]:
            console.print(f"note: {note}", highlight=False)
        console.print(f"wrote {paths['summary']}, {paths['shares'].name}, {paths['delays'].name}, "
                      f"{paths['plot'].name}", highlight=False)
        print(json.dumps(summary if as_json else {"experiment": "fairness", "seconds": summary["seconds"]}))


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
