"""``corral up --replicas N``: a local cell whose master is replicated on a local etcd cluster.

A 3-member etcd cluster (data under ``DIR/etcd``), N masters on ports
``--port``, ``--port``+1, ... (or any free ones with ``--port 0``; a restarted
master comes back on its port) that elect one leader, and the agents, which
know every master. A master that exits (a deposed leader restarts from the
log as a follower) is started again. ``stop()`` ends the agents, the masters,
then etcd.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from corral.cli.up import LocalCell


class ReplicatedCell(LocalCell):
    def __init__(self, directory: Path, replicas: int = 3, **kw: Any):
        super().__init__(directory, **kw)
        self.replicas = replicas
        self.masters = [f"master{i}" for i in range(replicas)]
        self.urls: dict[str, str] = {}
        self.etcd: Any = None
        self.restarts = 0

    @property
    def store_url(self) -> str:
        return self.etcd.url + "/corral"

    def start(self, timeout_s: float = 30.0) -> "ReplicatedCell":
        from corral.store.etcd_cluster import EtcdCluster

        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_dir()  # before etcd: a second cell in this directory must not touch its data
        ca = None
        if self.tls:  # etcd speaks TLS too, with certificates of the cell's CA (clients and peers)
            self.tls_args("master0", "master")  # makes the CA on first use
            ca = self.dir / "ca"
        self.etcd = EtcdCluster(self.dir / "etcd", ca=ca).start(timeout_s)
        return super().start(timeout_s)

    def _lock_dir(self) -> None:
        if getattr(self, "_lock", None) is None or self._lock.closed:
            super()._lock_dir()

    def start_master(self, timeout_s: float = 30.0) -> "ReplicatedCell":
        for i, name in enumerate(self.masters):
            port = self.urls[name].rsplit(":", 1)[1] if name in self.urls else (self.port + i if self.port else 0)
            self.start_one(name, int(port), timeout_s)
        self.url = ",".join(self.urls[n] for n in self.masters)
        return self

    def start_one(self, name: str, port: int, timeout_s: float = 30.0) -> str:
        """Start (or start again) one master; wait until it serves; its URL."""
        log_path = self.dir / "logs" / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        proc = self._spawn(name, [
            "master", "--store", self.store_url, "--port", str(port), "--tokens", str(self.dir / "tokens.yaml"),
            "--no-write-config", "--poll-interval", str(self.poll_interval_s),
            "--misses-to-down", str(self.misses_to_down), *(["--policy", self.policy] if self.policy else []),
            *self.log_flags, *self.tls_args(name, "master"), *(["--etcd-tls"] if self.tls else [])])
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_path}:\n"
                                   + log_path.read_bytes()[offset:].decode(errors="replace")[-1500:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start within {timeout_s:.0f}s; see {log_path}")
            found = re.findall(rb"serving (https?://127\.0\.0\.1:\d+)", log_path.read_bytes()[offset:])
            if found:
                self.urls[name] = found[-1].decode()
                return self.urls[name]
            time.sleep(0.05)

    def supervise(self) -> str | None:
        """Start every master that exited again (on its port); why the cell cannot go on, or None."""
        for name in self.masters:
            proc = self.procs[name]
            if proc.poll() is not None:
                self.echo(f"corral up: {name} exited with {proc.returncode}; starting it again")
                self.restarts += 1
                try:
                    self.start_one(name, int(self.urls[name].rsplit(":", 1)[1]))
                except RuntimeError as e:
                    return str(e)
        for name, proc in self.etcd.procs.items():
            if proc.poll() is not None:
                return f"etcd member {name} exited with {proc.returncode}; see {self.etcd.directory}/{name}.log"
        return super().supervise(only=self.names)  # the agents, with backoff

    def masters_now(self) -> list[dict[str, Any]]:
        from corral.cli.masters import list_masters

        rows = list_masters([self.urls[n] for n in self.masters], self.admin_token, self.ca)
        for name, row in zip(self.masters, rows):
            row["name"] = name
        return rows

    def write_state(self) -> None:
        self.addresses.update((m["name"], m["address"]) for m in self.machines_up() if m["name"] in self.names)
        machines = self.addresses
        state = {"masters": {n: {"url": self.urls[n], "pid": self.procs[n].pid,
                                 "log": str(self.dir / "logs" / f"{n}.log")} for n in self.masters},
                 "etcd": {"endpoints": self.etcd.endpoints, "data": str(self.etcd.directory)},
                 "agents": {n: {"pid": self.procs[n].pid, "address": machines.get(n, ""),
                                "log": str(self.dir / "logs" / f"{n}.log"), "cgroup_root": f"{self.tag}-{n}"}
                            for n in self.names},
                 "store": self.store_url, "tokens": str(self.dir / "tokens.yaml"), "pid": os.getpid()}
        (self.dir / "cell.json").write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        try:
            super().stop()  # agents and masters (all SIGTERM), then what is left of their children
        finally:
            if self.etcd is not None:
                self.etcd.stop()
