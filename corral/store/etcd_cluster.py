"""A local etcd cluster of real ``etcd`` processes, for tests, benchmarks and ``corral up --replicas``.

Members listen on loopback ports picked free at start; their data lives under
``directory``. Tuned for fast failover on one machine: heartbeat 50 ms,
election timeout 500 ms (etcd's defaults are 100 ms / 1 s). ``stop()`` ends
every member it started; a member can be killed and started again alone
(fault tests).

With ``ca`` (a cell CA's directory: corral ca init), every member serves
clients and peers over TLS with a certificate of role ``etcd`` issued from it
on first start (``CA/etcdN.pem``) and accepts only clients and peers
that present a certificate of that CA (``--client-cert-auth``,
``--peer-client-cert-auth``); the masters use their own certificates.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

ETCD_PACKAGE = "etcd-server"  # the Debian package that installs /usr/bin/etcd


class EtcdMissing(RuntimeError):
    """No ``etcd`` binary on PATH."""


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if found is None:
        raise EtcdMissing(f"etcd is not installed (on Debian: apt-get install {ETCD_PACKAGE})")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EtcdCluster:
    def __init__(self, directory: str | Path, members: int = 3, host: str = "127.0.0.1",
                 heartbeat_ms: int = 50, election_ms: int = 500, ca: str | Path | None = None,
                 also_listen: tuple[str, ...] = ()):
        self.binary = etcd_binary()
        self.directory = Path(directory)
        self.host = host
        self.ca = Path(ca) if ca is not None else None
        self.scheme = "https" if ca is not None else "http"
        self.also_listen = also_listen  # more addresses clients reach the members on (same ports)
        self.names = [f"etcd{i}" for i in range(members)]
        known = self.directory / "cluster.json"  # a cluster started here before comes back on its ports
        if known.exists():
            ports = json.loads(known.read_text())
            self.client_ports, self.peer_ports = ports["client"], ports["peer"]
        else:
            self.client_ports = {n: free_port(host) for n in self.names}
            self.peer_ports = {n: free_port(host) for n in self.names}
        self.heartbeat_ms, self.election_ms = heartbeat_ms, election_ms
        self.procs: dict[str, subprocess.Popen] = {}
        self._started_once: set[str] = set()

    @property
    def endpoints(self) -> list[str]:
        return [f"{self.host}:{self.client_ports[n]}" for n in self.names]

    @property
    def url(self) -> str:
        """The store URL of this cluster: ``etcd://host:port,host:port,...``."""
        return "etcd://" + ",".join(self.endpoints)

    def _tls_args(self, name: str) -> list[str]:
        if self.ca is None:
            return []
        from corral.tls import CA_CERT, issue

        if not (self.ca / f"{name}.pem").exists():
            issue(self.ca, name, [self.host], role="etcd")
        cert, key, ca = str(self.ca / f"{name}.pem"), str(self.ca / f"{name}-key.pem"), str(self.ca / CA_CERT)
        return ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth",
                "--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca,
                "--peer-client-cert-auth"]

    def client_files(self) -> Any:
        """A corral.tls.TlsFiles for this cluster's clients: the CA and a member's certificate."""
        from corral.tls import CA_CERT, TlsFiles

        name = self.names[0]
        return TlsFiles(self.ca / f"{name}.pem", self.ca / f"{name}-key.pem", self.ca / CA_CERT)

    def _args(self, name: str) -> list[str]:
        http = self.scheme
        peers = ",".join(f"{n}={http}://{self.host}:{self.peer_ports[n]}" for n in self.names)
        client = f"{http}://{self.host}:{self.client_ports[name]}"
        listen = ",".join([client, *(f"{http}://{h}:{self.client_ports[name]}" for h in self.also_listen)])
        peer = f"{http}://{self.host}:{self.peer_ports[name]}"
        return [self.binary, "--name", name, "--data-dir", str(self.directory / name),
                "--listen-client-urls", listen, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", peers, "--initial-cluster-token", f"corral-{self.directory.name}",
                "--initial-cluster-state", "existing" if name in self._started_once else "new",
                "--heartbeat-interval", str(self.heartbeat_ms), "--election-timeout", str(self.election_ms),
                "--logger", "zap", "--log-level", "error", *self._tls_args(name)]

    def start(self, timeout_s: float = 20.0) -> "EtcdCluster":
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "cluster.json").write_text(json.dumps({"client": self.client_ports,
                                                                 "peer": self.peer_ports}))
        try:
            for name in self.names:
                self.start_member(name, wait=False)
            self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def start_member(self, name: str, wait: bool = True, timeout_s: float = 20.0) -> None:
        log = open(self.directory / f"{name}.log", "a")
        self.procs[name] = subprocess.Popen(self._args(name), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self._started_once.add(name)
        if wait:
            self.wait_healthy(timeout_s, members=[name])

    def kill_member(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def healthy(self, name: str) -> bool:
        try:
            verify: Any = self.client_files().client_context() if self.ca is not None else True
            r = httpx.get(f"{self.scheme}://{self.host}:{self.client_ports[name]}/health", timeout=1.0, verify=verify)
            return r.status_code == 200 and r.json().get("health") == "true"
        except (httpx.HTTPError, ValueError):
            return False

    def wait_healthy(self, timeout_s: float = 20.0, members: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = list(members or self.names)
        while waiting:
            for name in list(waiting):
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    log = (self.directory / f"{name}.log").read_text()[-1500:]
                    raise RuntimeError(f"etcd member {name} exited with {proc.returncode}: {log}")
                if self.healthy(name):
                    waiting.remove(name)
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"etcd members {waiting} not healthy after {timeout_s} s")
            if waiting:
                time.sleep(0.1)

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

    def __enter__(self) -> "EtcdCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
