"""``corral master``: run the cell's master (Borg's Borgmaster) on 127.0.0.1."""

from __future__ import annotations

import gc
import getpass
import logging
import re
import secrets
import signal
import threading
from pathlib import Path

import typer


def _local_user() -> str:
    name = re.sub(r"[^a-z0-9_\-]", "-", getpass.getuser().lower()).strip("-_") or "admin"
    return name[:64]


def ensure_tokens(path: Path) -> str:
    """Create ``path`` with an admin token for the local user (and an agent token) if it does not
    exist; return the local user's admin token if the file has one."""
    import yaml

    user = _local_user()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {secrets.token_urlsafe(24): {"user": user, "role": "admin"},
                secrets.token_urlsafe(24): {"user": "agents", "role": "agent"}}
        path.write_text(yaml.safe_dump(data))
        path.chmod(0o600)
    data = yaml.safe_load(path.read_text()) or {}
    for token, entry in data.items() if isinstance(data, dict) else ():
        if isinstance(entry, dict) and entry.get("user") == user and entry.get("role") == "admin":
            return str(token)
    return ""


def register(app: typer.Typer) -> None:
    @app.command("master")
    def master(
        store: str = typer.Option("sqlite://corral-master/state.db", "--store",
                                  help="sqlite:///ABS/PATH or sqlite://REL/PATH (durable), or memory:// (tests)"),
        port: int = typer.Option(7100, "--port", help="port on --host (0: any free port)"),
        host: str = typer.Option("127.0.0.1", "--host"),
        cell: str = typer.Option("local", "--cell", help="the cell's name, the last part of task names"),
        tokens: Path = typer.Option(None, "--tokens", help="tokens file; default: tokens.yaml next to the store, "
                                                           "created with an admin token for you"),
        quota: Path = typer.Option(None, "--quota", help="quota file (user -> band -> resources); none: unlimited"),
        write_config: bool = typer.Option(True, "--write-config/--no-write-config",
                                          help="write the address and your admin token for the CLI"),
        validate: bool = typer.Option(False, "--validate", help="check invariants after every step (slow)"),
        poll_interval: float = typer.Option(2.0, "--poll-interval", help="seconds between polls of each agent"),
        misses_to_down: int = typer.Option(3, "--misses-to-down", help="missed polls in a row that make a machine down"),
        reschedule_rate: float = typer.Option(20.0, "--reschedule-rate",
                                              help="tasks per second moved off down machines (burst as many)"),
        verbose: bool = typer.Option(False, "--verbose", "-v"),
    ) -> None:
        """Run the master: API, state, persistence and the scheduler loop."""
        from corral.cli.config import write_config as save_config
        from corral.master.admission import ConfigFileError, Tokens
        from corral.master.server import MasterServer, build_master
        from corral.store import StoreError

        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if not re.match(r"^[a-z0-9]([a-z0-9_\-]{0,62}[a-z0-9])?$", cell):
            typer.echo(f"corral master: --cell: expected lowercase letters, digits, '-' or '_', got {cell!r}", err=True)
            raise typer.Exit(2)
        if tokens is None:
            base = Path(store[len("sqlite://"):]).parent if store.startswith("sqlite://") else Path("corral-master")
            tokens = base / "tokens.yaml"
        try:
            admin_token = ensure_tokens(tokens)
            token_table = Tokens.load(tokens)
            server = MasterServer(build_master(store, cell=cell, quota_path=quota, validate=validate),
                                  token_table, host=host, port=port)
        except (ConfigFileError, StoreError, OSError) as e:
            typer.echo(f"corral master: {e}", err=True)
            raise typer.Exit(2) from None
        from corral.master.link import attach_link
        from corral.master.liveness import RescheduleLimiter

        link = attach_link(server.master, token_table, poll_interval_s=poll_interval, misses_to_down=misses_to_down)
        core = server.master.core
        core.reschedule = RescheduleLimiter(core.clock, rate_per_s=reschedule_rate, burst=max(1, int(reschedule_rate)))
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
        try:
            server.start()
        except RuntimeError as e:
            typer.echo(f"corral master: {e}", err=True)
            raise typer.Exit(1) from None
        link.start()
        addr = f"http://{host}:{server.port}"
        if write_config and admin_token:
            path = save_config(addr, admin_token)
            typer.echo(f"corral master: serving {addr} (store {store}); CLI config written to {path}", err=True)
        else:
            typer.echo(f"corral master: serving {addr} (store {store})", err=True)
        try:
            while not stop.wait(1.0):
                if server._thread is not None and not server._thread.is_alive():
                    typer.echo("corral master: the HTTP server stopped", err=True)
                    break
        finally:
            link.stop()
            server.stop()
