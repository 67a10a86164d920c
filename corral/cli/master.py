"""``corral master``: run the cell's master (Borg's Borgmaster) on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from corral.cli.connect import die
from corral.logwords import LogFormat, LogLevel


def _local_user() -> str:
    import getpass  # here: every command's help registers this module

    name = re.sub(r"[^a-z0-9_\-]", "-", getpass.getuser().lower()).strip("-_") or "admin"
    return name[:64]


def ensure_tokens(path: Path) -> str:
    """Create ``path`` (mode 0600) with an admin token for the local user (and an agent token any
    agent may use: ``machine: "*"``) if it does not exist; return the local user's admin token if
    the file has one."""
    import secrets

    import yaml

    from corral.model.private import write_private

    user = _local_user()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {secrets.token_urlsafe(24): {"user": user, "role": "admin"},
                # not bound to a machine: `corral master` does not know its agents' names
                secrets.token_urlsafe(24): {"user": "agents", "role": "agent", "machine": "*"}}
        write_private(path, yaml.safe_dump(data))
    data = yaml.safe_load(path.read_text()) or {}
    for token, entry in data.items() if isinstance(data, dict) else ():
        if isinstance(entry, dict) and entry.get("user") == user and entry.get("role") == "admin":
            return str(token)
    return ""


def tls_files(command: str, cert: Path | None, key: Path | None, ca: Path | None) -> Any:
    """A corral.tls.TlsFiles for --tls-cert/--tls-key/--tls-ca (all three, or none: None)."""
    given = [p for p in (cert, key, ca) if p is not None]
    if not given:
        return None
    if len(given) != 3:
        die(command, "--tls-cert, --tls-key and --tls-ca go together (make them with `corral ca init DIR`)")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca)):
        if not path.is_file():
            die(command, f"{flag}: no file {path}")
    from corral.tls import TlsFiles

    return TlsFiles(cert, key, ca)


def check_policy(spec: str, where: str = "--policy", command: str = "master") -> str:
    """``spec`` if it names a scheduling policy (the syntax of ``corral sim --policy``: a preset or
    ``scorer=weight,...``); otherwise one line naming the known policies, and exit 2."""
    from corral.sched.policy import PolicyError, parse_policy_spec

    try:
        parse_policy_spec(spec).make(0)
    except PolicyError as e:
        die(command, f"{where}: {e}")
    return spec


def _from_file(ctx: typer.Context, path: Path, given: dict) -> dict:
    """``given`` (this command's parameters) with the cell configuration file's settings for every
    parameter not set on the command line (or by its environment variable)."""
    from corral.cli.cellconfig import CellConfigError, load_cell_config

    try:
        settings = load_cell_config(path)
    except CellConfigError as e:
        die("master", str(e))
    merged = dict(given)
    for name, value in settings.items():
        source = ctx.get_parameter_source(name)
        if getattr(source, "name", "") not in ("COMMANDLINE", "ENVIRONMENT"):
            merged[name] = Path(value) if name in ("tokens", "quota") else value
    return merged


def register(app: typer.Typer) -> None:
    @app.command("master")
    def master(
        ctx: typer.Context,
        config: Path = typer.Option(None, "--config", help="a cell configuration file (YAML; keys as these flags: "
                                                          "cell, listen, store, tokens, quota, policy, ...); "
                                                          "flags override it"),
        store: str = typer.Option("sqlite://corral-master/state.db", "--store",
                                  help="sqlite:///ABS/PATH or sqlite://REL/PATH (durable), etcd://HOST:PORT,... "
                                       "(replicated: one of several masters, one elected leader), "
                                       "or memory:// (tests)"),
        port: int = typer.Option(7100, "--port", help="port on --host (0: any free port)"),
        host: str = typer.Option("127.0.0.1", "--host"),
        listen: str = typer.Option(None, "--listen", help="HOST:PORT to serve on (instead of --host and --port)"),
        advertise: str = typer.Option(None, "--advertise", help="the URL agents, clients and the other masters use "
                                                                "for this one; default http://HOST:PORT as served"),
        cell: str = typer.Option("local", "--cell", help="the cell's name, the last part of task names"),
        tokens: Path = typer.Option(None, "--tokens", help="tokens file; default: tokens.yaml next to the store, "
                                                           "created with an admin token for you"),
        quota: Path = typer.Option(None, "--quota", help="quota file (user -> band -> resources); none: unlimited"),
        policy: str = typer.Option(None, "--policy", help="the scheduler's policy, as corral sim --policy: hybrid "
                                                         "(default), best-fit, worst-fit, random, or scorer=weight,..."),
        queue_order: str = typer.Option(None, "--queue-order", help="inside a priority band: drf (Dominant Resource "
                                                                   "Fairness, the default) or round-robin"),
        reclamation: bool = typer.Option(None, "--reclamation/--no-reclamation",
                                         help="place non-production work in what running tasks reserved but do "
                                              "not use (Borg's reclamation; on by default)"),
        write_config: bool = typer.Option(True, "--write-config/--no-write-config",
                                          help="write the address and your admin token for the CLI"),
        validate: bool = typer.Option(False, "--validate", help="check invariants after every step (slow)"),
        poll_interval: float = typer.Option(2.0, "--poll-interval", help="seconds between polls of each agent"),
        misses_to_down: int = typer.Option(3, "--misses-to-down", help="missed polls in a row that make a machine down"),
        reschedule_rate: float = typer.Option(20.0, "--reschedule-rate",
                                              help="tasks per second moved off down machines (burst as many)"),
        speculation_budget: int = typer.Option(20, "--speculation-budget", min=0,
                                               help="stragglers' speculative copies running at once in the cell "
                                                    "(0: none)"),
        speculation_per_job: int = typer.Option(2, "--speculation-per-job", min=0,
                                                help="speculative copies running at once per job"),
        machine_queues: bool = typer.Option(False, "--machine-queues/--no-machine-queues",
                                            help="let batch tasks that fit nowhere wait in an agent's queue, "
                                                 "started there the moment room frees (Apollo; off by default)"),
        machine_queue_length: int = typer.Option(4, "--machine-queue-length", min=1,
                                                 help="tasks waiting in one machine's queue at most"),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="the same as --log-level debug"),
        log_format: LogFormat = typer.Option("text", "--log-format", help="text lines, or JSON lines with "
                                                                          "the command id on every line about one"),
        log_level: LogLevel = typer.Option("info", "--log-level", help="info logs submits, placements, "
                                                                       "preemptions, kills, machines, leadership"),
        dns: str = typer.Option("", "--dns", help="serve names over DNS (UDP) on PORT or HOST:PORT (host "
                                "default 127.0.0.1); empty: no DNS"),
        tls_cert: Path = typer.Option(None, "--tls-cert", help="serve HTTPS with this certificate (from the cell's "
                                                              "CA: corral ca init); with --tls-key and --tls-ca"),
        tls_key: Path = typer.Option(None, "--tls-key"),
        tls_ca: Path = typer.Option(None, "--tls-ca", help="the cell's CA certificate: agents must present one "
                                                          "of its certificates naming their machine"),
        etcd_tls: bool = typer.Option(False, "--etcd-tls", help="speak TLS to the etcd store too: verify it against "
                                                               "--tls-ca, present --tls-cert (etcd run with "
                                                               "--client-cert-auth trusting the cell's CA)"),
    ) -> None:
        """Run the master: API, state, persistence and the scheduler loop."""
        tls = tls_files("master", tls_cert, tls_key, tls_ca)
        if listen is not None:
            from corral.cli.cellconfig import split_listen

            try:
                host, port = split_listen(listen)
            except ValueError as e:
                die("master", f"--listen: {e}")
        if advertise is not None and not advertise.startswith(("http://", "https://")):
            die("master", f"--advertise: expected a URL like http://10.0.0.5:7100, got {advertise!r}")
        given = dict(store=store, port=port, host=host, advertise=advertise, tls=tls, cell=cell, tokens=tokens,
                     quota=quota, policy=policy, queue_order=queue_order, shares=None, schedulers=None,
                     reclamation=reclamation, rebalance=None,
                     write_config=write_config,
                     validate=validate, poll_interval=poll_interval, misses_to_down=misses_to_down,
                     reschedule_rate=reschedule_rate, verbose=verbose, log_format=log_format, log_level=log_level,
                     dns=dns, etcd_tls=etcd_tls, speculation_budget=speculation_budget,
                     speculation_per_job=speculation_per_job, machine_queues=machine_queues,
                     machine_queue_length=machine_queue_length)
        if config is not None:
            given = _from_file(ctx, config, given)
        if etcd_tls and (tls is None or not str(given["store"]).startswith("etcd://")):
            die("master", "--etcd-tls: needs an etcd:// --store and --tls-cert, --tls-key and --tls-ca")
        if given["policy"] is not None:
            check_policy(given["policy"], "--policy" if config is None or policy is not None
                         else f"{config}: policy")
        if given["queue_order"] is not None:
            from corral.sched.queue import USER_ORDERS

            if given["queue_order"] not in USER_ORDERS:
                die("master", f"--queue-order: expected one of {', '.join(USER_ORDERS)}, "
                              f"got {given['queue_order']!r}")
        run_master(**given)


def parse_dns_address(text: str) -> tuple[str, int]:
    """``--dns``: ``PORT`` or ``HOST:PORT`` (host: 127.0.0.1); exits 2 naming the flag otherwise."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        die("master", f"--dns: expected PORT or HOST:PORT with a port in 0..65535, got {text!r}")
    return host or "127.0.0.1", int(port)


def run_master(store: str, port: int, host: str, cell: str, tokens: Path | None, quota: Path | None,
               policy: str | None, write_config: bool, validate: bool, poll_interval: float,
               misses_to_down: int, reschedule_rate: float, verbose: bool, log_format: str = "text",
               log_level: str = "info", queue_order: str | None = None, shares=None, dns: str = "",
               advertise: str | None = None, tls: Any = None, etcd_tls: bool = False,
               reclamation: bool | None = None, schedulers: Any = None, speculation_budget: int = 20,
               speculation_per_job: int = 2, rebalance: Any = None, machine_queues: bool = False,
               machine_queue_length: int = 4) -> None:
    """Serve a master until SIGTERM or SIGINT (what ``corral master`` does once its settings are
    known and checked)."""
    import gc
    import signal
    import threading

    from corral.cli.config import write_config as save_config
    from corral.master.auth import Tokens
    from corral.master.configfiles import ConfigFileError
    from corral.master.server import MasterServer, build_master
    from corral.sched.speculation import SpeculationConfig
    from corral.store import StoreError

    from corral.logfmt import setup as setup_logging

    setup_logging(log_format, "debug" if verbose else log_level)
    if not re.match(r"^[a-z0-9]([a-z0-9_\-]{0,62}[a-z0-9])?$", cell):
        die("master", f"--cell: expected lowercase letters, digits, '-' or '_', got {cell!r}")
    dns_at = parse_dns_address(dns) if dns else None
    if tokens is None:
        base = Path(store[len("sqlite://"):]).parent if store.startswith("sqlite://") else Path("corral-master")
        tokens = base / "tokens.yaml"
    try:
        admin_token = ensure_tokens(tokens)
        token_table = Tokens.load(tokens)
        server = MasterServer(build_master(store, cell=cell, quota_path=quota, validate=validate, policy=policy,
                                            queue_order=queue_order, shares=shares, reclamation=reclamation,
                                            store_tls=tls if etcd_tls else None,
                                            speculation=SpeculationConfig(per_job=speculation_per_job,
                                                                          per_cell=speculation_budget),
                                            **({} if schedulers is None else {"profiles": schedulers})),
                              token_table, host=host, port=port, dns=dns_at, tls=tls)
    except (ConfigFileError, StoreError, OSError) as e:
        die("master", str(e))
    from corral.master.link import attach_link
    from corral.master.liveness import RescheduleLimiter

    link = attach_link(server.master, token_table, poll_interval_s=poll_interval, misses_to_down=misses_to_down)
    if tls is not None:
        link.verify = tls.client_context("agent")
    core = server.master.core
    if rebalance is not None and rebalance.enabled:  # the cell file's rebalance: (corral.master.rebalancer)
        from corral.master.rebalancer import Rebalancer

        server.master.rebalancer = Rebalancer(core, rebalance)
    core.reschedule = RescheduleLimiter(core.clock, rate_per_s=reschedule_rate, burst=max(1, int(reschedule_rate)))
    from corral.master.queue_placement import MachineQueueConfig

    core.machine_queues.config = MachineQueueConfig(enabled=machine_queues, max_length=machine_queue_length)
    # The master holds many long-lived objects: freeze what recovery built and collect the young
    # generation less often, so cyclic GC does not stall request handling.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    # Our own SIGTERM/SIGINT handlers, installed before anything runs: uvicorn serves from a
    # thread (where it installs none) and the master stops cleanly when asked.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    replicated = store.startswith("etcd://")
    try:
        server.start(start_master=not replicated)
    except RuntimeError as e:
        die("master", str(e), 1)
    addr = advertise.rstrip("/") if advertise else server.url
    deposed: list[str] = []
    if replicated:
        from corral.master.replica import Replica

        def on_deposed(why: str) -> None:
            deposed.append(why)
            stop.set()
        replica = Replica(server.master, server.master.store, addr, on_promote=link.start, on_deposed=on_deposed)
        replica.start()
    else:
        link.start()
    what = (f"store {store}, policy {core.scheduler.config.policy}, queue order {core.scheduler.user_order.name}"
            + ("" if core.scheduler.config.reclamation else ", reclamation off")
            + (", a replica: follower until elected" if replicated else "")
            + ("" if core.profiles.profiles.single else ", schedulers " + ", ".join(
                p.name + (" (external)" if p.external else "") for p in core.profiles.profiles)))
    if write_config and admin_token:
        path = save_config(addr, admin_token)
        typer.echo(f"corral master: serving {addr} ({what}); CLI config written to {path}", err=True)
    else:
        typer.echo(f"corral master: serving {addr} ({what})", err=True)
    server.master.announce()
    if server.names is not None:
        typer.echo(f"corral master: names over DNS on udp {server.names.host}:{server.names.port}", err=True)
    try:
        while not stop.wait(1.0):
            if server._thread is not None and not server._thread.is_alive():
                typer.echo("corral master: the HTTP server stopped", err=True)
                break
    finally:
        link.stop()
        if replicated:
            if replica.leading and server.master.broken is None:
                try:  # while it still leads: a checkpoint is fenced like every write
                    server.master.checkpoint().result(30.0)
                except Exception as e:
                    typer.echo(f"corral master: final checkpoint failed: {e}", err=True)
            replica.stop()  # resigns: a follower takes over at once, not after the lease
        server.stop(checkpoint=not replicated)
    if deposed:
        typer.echo(f"corral master: stopped: {deposed[0]}; start it again to follow the new leader", err=True)
        raise typer.Exit(3)
