"""Serving the master: uvicorn on its host (127.0.0.1 by default), in a thread for tests and the CLI."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from corral.master.auth import Tokens
from corral.master.quota import Quotas
from corral.master.api import create_app
from corral.master.dns import NameServer
from corral.master.service import Master
from corral.store import open_store

log = logging.getLogger(__name__)


def build_master(store_url: str, cell: str = "local", quota_path: str | Path | None = None,
                 validate: bool = False, policy: str | None = None, queue_order: str | None = None,
                 shares: Any = None, store_tls: Any = None, reclamation: bool | None = None, **args: Any) -> Master:
    """Open the store, rebuild the state from it and return a master ready to ``start()``.

    ``policy``: the scheduler's policy (a preset or ``scorer=weight,...``, as ``corral sim
    --policy``); None: the scheduler's default. A bad one raises corral.sched.policy.PolicyError
    before the store is opened. ``queue_order`` (drf or round-robin) and ``shares`` (a
    corral.sched.shares.ShareConfig: weights and groups) set how users take turns. ``reclamation``
    False places non-production work against limits too (default: against reservations). Other
    ``args`` go to ``Master.recover``. ``store_tls`` (a corral.tls.TlsFiles): the etcd store over TLS.
    """
    if policy is not None or queue_order is not None or shares is not None or reclamation is not None:
        if "scheduler" in args:
            raise ValueError("build_master: give policy, queue_order, shares and reclamation, or scheduler, not both")
        from corral.sched.scheduler import Scheduler, SchedulerConfig

        config = SchedulerConfig(**{k: v for k, v in (("policy", policy), ("queue_order", queue_order)) if v},
                                 **({} if reclamation is None else {"reclamation": reclamation}))
        args["scheduler"] = Scheduler(config, shares=shares)
    store = open_store(store_url, tls=store_tls)
    try:
        return Master.recover(store, cell=cell, quotas=Quotas.load(quota_path), validate=validate, **args)
    except BaseException:
        store.close()
        raise


class _Server(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM/SIGINT after its shutdown, which would end the process
    before the master's own clean stop (final checkpoint, store closed); we exit by returning."""

    def handle_exit(self, sig, frame) -> None:  # type: ignore[no-untyped-def]
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


class MasterServer:
    """A master and its HTTP API on ``host:port`` (port 0: any free port), served from a thread;
    with ``dns=(host, port)`` also its names over DNS (corral.master.dns) on that UDP address."""

    def __init__(self, master: Master, tokens: Tokens, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning", dns: tuple[str, int] | None = None, dns_ttl_s: int = 5,
                 tls: Any = None):
        """``tls``: a corral.tls.TlsFiles: serve HTTPS, and agents must present their machine's
        client certificate (anyone else may present none: users authenticate with tokens)."""
        self.master, self.tokens, self.tls = master, tokens, tls
        master.agent_certificates = tls is not None
        self.names: NameServer | None = NameServer(master, *dns, ttl_s=dns_ttl_s) if dns is not None else None
        self.app = create_app(master, tokens)
        self.config = uvicorn.Config(self.app, host=host, port=port, log_level=log_level, access_log=False,
                                     **(tls.server_config(require_client_cert=False) if tls else {}),
                                     lifespan="off", timeout_keep_alive=30, backlog=2048,
                                     # Bound to 127.0.0.1, never behind a proxy: no per-request proxy
                                     # header rewriting; no Server header.
                                     proxy_headers=False, server_header=False)
        self.server = _Server(self.config)
        self._thread: threading.Thread | None = None
        self.host, self.port = host, port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0, start_master: bool = True) -> "MasterServer":
        """Serve; ``start_master``: start the master's scheduler too (a replica starts it once it
        leads)."""
        if start_master:
            self.master.start()
        self._thread = threading.Thread(target=self.server.run, name="corral-master-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the master's HTTP server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        if self.names is not None:
            self.names.start()
        return self

    def stop(self, checkpoint: bool = True) -> None:
        self.server.should_exit = True
        if self.names is not None:
            self.names.stop()
        if self._thread is not None:
            self._thread.join(15.0)
        self.master.stop(checkpoint=checkpoint)

    def __enter__(self) -> "MasterServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
