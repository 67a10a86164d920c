"""``corral up``: a whole local cell on this machine — a master and N agents — in one command.

The master (SQLite store under ``--dir``) and the agents run as child
processes bound to 127.0.0.1, each agent with its own agent token. The CLI
config is written so ``corral submit|jobs|why|logs`` work from another shell.
Ctrl-C or SIGTERM stops the cell: agents first (they kill their tasks and
remove their control groups), then the master; whatever is left — a task an
agent killed with -9 left behind, a control group — is killed and removed.
``corral up`` is a child subreaper, so orphaned task processes stay its
descendants and are found; a reaper thread (corral/cli/reaper.py) waits for
those that exit, so they do not pile up as zombies. A master or agent that
exits is started again, with backoff, up to a bounded number of times
(corral/cli/up_restarts.py); the rest of the cell runs on meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import typer

from corral.cli.up_tokens import ensure_cell_tokens
from corral.logwords import LogFormat, LogLevel

__all__ = ["LocalCell", "ensure_cell_tokens", "register"]

def _pythonpath() -> str:
    """The directory holding the ``corral`` package this process runs, first on the children's path."""
    import corral

    root = str(Path(corral.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    return root + (os.pathsep + rest if rest else "")


class LocalCell:
    """A master and ``agents`` agents as child processes; ``start()`` / ``stop()``."""

    def __init__(self, directory: Path, agents: int = 2, port: int = 7100, poll_interval_s: float = 1.0,
                 misses_to_down: int = 3, capacity: str = "", kill_grace_s: float = 3.0, echo=print,
                 policy: str | None = None, log_format: str = "text", log_level: str = "info",
                 tls: bool = False):
        self.dir = directory.resolve()
        self.names = [f"m{i + 1}" for i in range(agents)]
        self.port, self.poll_interval_s, self.misses_to_down = port, poll_interval_s, misses_to_down
        self.capacity, self.kill_grace_s = capacity, kill_grace_s
        self.policy = policy  # the master's scheduling policy; None: its default
        self.log_flags = ["--log-format", log_format, "--log-level", log_level]  # the master's and agents'
        self.tls = tls  # HTTPS everywhere with certificates from the cell's CA in DIR/ca
        self.echo = echo
        self.procs: dict[str, subprocess.Popen] = {}
        self.url = ""
        self.admin_token = ""
        self.agent_tokens: dict[str, str] = {}
        self.reaper = False  # set when this process is a child subreaper: all its descendants are the cell's
        self.tag = f"corral-up{os.getpid()}{os.urandom(2).hex()}"  # cgroup roots of this cell's agents: <tag>-<agent>
        self._logs: list[Any] = []
        self._client: Any = None  # a corral.client.Client (plain JSON) to the master, made on first use
        # Held while a child is started and until it is in self.procs: the reaper (when this
        # process is a subreaper) never waits for a child this process waits for itself.
        self.spawn_lock = threading.Lock()
        self._reaper: Any = None
        self._supervision: Any = None  # corral.cli.up_restarts.Supervision, made on first use
        self.addresses: dict[str, str] = {}  # agent -> where it serves (a restarted one comes back there)

    # ---- starting ------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], secrets_env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``corral ARGS`` as child ``name``; ``secrets_env`` (a token) goes into its
        environment, never its argv: ``ps`` shows every user a process's argv, while
        /proc/PID/environ is readable by its own user only."""
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "logs" / f"{name}.log", "ab")
        self._logs.append(log)
        env = {**os.environ, "PYTHONPATH": _pythonpath(), "PYTHONUNBUFFERED": "1"}
        env.pop("CORRAL_AGENT_TOKEN", None)
        env.update(secrets_env or {})
        with self.spawn_lock:
            proc = subprocess.Popen([sys.executable, "-m", "corral.cli.main", *args], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=self.dir,
                                    start_new_session=True)
            self.procs[name] = proc
        return proc

    @property
    def ca(self) -> str | None:
        return str(self.dir / "ca" / "ca.pem") if self.tls else None

    def tls_args(self, name: str, role: str = "agent") -> list[str]:
        """``--tls-*`` for the master or agent ``name`` (its certificate, in ``role``, issued on first use)."""
        if not self.tls:
            return []
        from corral.tls import init_ca, issue

        ca = self.dir / "ca"
        if not (ca / "ca.pem").exists():
            init_ca(ca)
        if not (ca / f"{name}.pem").exists():
            issue(ca, name, ["127.0.0.1"], role=role)
        return ["--tls-cert", str(ca / f"{name}.pem"), "--tls-key", str(ca / f"{name}-key.pem"),
                "--tls-ca", str(ca / "ca.pem")]

    def own_pids(self) -> set[int]:
        """The children this process waits for itself: its master's and agents' Popen objects not
        yet waited for. (A child replaced by a restart is no longer one: nobody waits for it.)"""
        return {p.pid for p in self.procs.values() if p.returncode is None}

    def start_reaper(self) -> None:
        """Reap orphans adopted as a child subreaper (call once this process is one)."""
        from corral.cli.reaper import Reaper

        self.reaper = True
        self._reaper = Reaper(self.own_pids, self.spawn_lock).start()

    def start(self, timeout_s: float = 30.0) -> "LocalCell":
        from corral.cli.master import _local_user

        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_dir()
        self.user = _local_user()
        self.admin_token, self.agent_tokens = ensure_cell_tokens(self.dir / "tokens.yaml", self.user, self.names)
        deadline = time.monotonic() + timeout_s
        self.start_master(timeout_s)
        self.port = int(self.url.rsplit(":", 1)[1])  # a restarted master comes back where the agents know it
        self._start_agents(deadline)
        self.write_state()
        return self

    def _lock_dir(self) -> None:
        """One cell per directory: a second ``corral up`` on the same store would corrupt it."""
        import fcntl

        self._lock = open(self.dir / "lock", "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            owner = self._lock.read().strip() or "?"
            self._lock.close()
            raise RuntimeError(f"another corral up (pid {owner}) runs a cell in {self.dir}; stop it or use "
                               "another --dir") from None
        self._lock.truncate(0)
        self._lock.write(str(os.getpid()))
        self._lock.flush()

    def start_master(self, timeout_s: float = 30.0) -> "LocalCell":
        """Start (or start again, on the same port once known) the master; wait until it serves."""
        log_path = self.dir / "logs" / "master.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        master = self._spawn("master", [
            "master", "--store", f"sqlite:///{self.dir / 'state.db'}", "--port", str(self.port),
            "--tokens", str(self.dir / "tokens.yaml"), "--no-write-config",
            "--poll-interval", str(self.poll_interval_s), "--misses-to-down", str(self.misses_to_down),
            *(["--policy", self.policy] if self.policy else []), *self.log_flags, *self.tls_args("master", "master")])
        deadline = time.monotonic() + timeout_s
        url = ""
        while not url:
            if master.poll() is not None:
                raise RuntimeError(f"the master exited with {master.returncode}; see {log_path}:\n"
                                   + log_path.read_bytes()[offset:].decode(errors="replace")[-1500:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"the master did not start within {timeout_s:.0f}s; see {log_path}")
            found = re.findall(rb"serving (https?://127\.0\.0\.1:\d+)", log_path.read_bytes()[offset:])
            if found:
                url = found[-1].decode()
            time.sleep(0.05)
        self.url = url
        return self

    def _start_agents(self, deadline: float) -> None:
        for name in self.names:
            self.start_agent(name)
        while len(self.machines_up()) < len(self.names):
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.dir / 'logs' / name}.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the agents did not register in time; see {self.dir / 'logs'}")
            time.sleep(0.1)

    def start_agent(self, name: str) -> None:
        """Start (or start again, on its state directory: it re-adopts its tasks) the agent ``name``."""
        i = self.names.index(name)
        args = ["agent", "--master", self.url, "--name", name,
                "--state-dir", str(self.dir / "agents" / name), "--attributes", f"rack=r{i + 1},zone=a",
                "--cgroup-root", f"{self.tag}-{name}", "--kill-grace", str(self.kill_grace_s), *self.log_flags,
                *self.tls_args(name)]
        if self.capacity:
            args += ["--capacity", self.capacity]
        if name in self.addresses:  # back where the master and the cell's users know it
            args += ["--port", self.addresses[name].rsplit(":", 1)[1]]
        self._spawn(name, args, {"CORRAL_AGENT_TOKEN": self.agent_tokens[name]})

    def api(self, method: str, path: str, **kw: Any) -> Any:
        """The JSON reply of the cell's master, as its admin; raises corral.client.ApiError."""
        return self.client().http.call(method, path, **kw)

    def client(self) -> Any:
        """The cell's master as its admin: a corral.client.Client answering plain JSON."""
        from corral.client import Client

        if self._client is None or self._client.addr != self.url:
            if self._client is not None:
                self._client.close()
            self._client = Client(self.url, self.admin_token, timeout_s=10.0, typed=False, ca=self.ca)
        return self._client

    def machines_up(self) -> list[dict[str, Any]]:
        from corral.client import ApiError

        try:
            return [m for m in self.client().machines(state="up")["machines"]]
        except (ApiError, ValueError, KeyError):
            return []

    def supervise(self, only: list[str] | None = None) -> str | None:
        """Start again the children (``only`` these) that exited, with backoff (corral.cli.up_restarts);
        why the cell cannot go on (one crashed too often), or None."""
        if self._supervision is None:
            from corral.cli.up_restarts import Supervision

            self._supervision = Supervision(self.restart, self.echo)
        return self._supervision.check({n: p for n, p in self.procs.items() if only is None or n in only})

    def restart(self, name: str) -> None:
        """Start the master (from its store, on its port) or an agent again; RuntimeError if it fails."""
        if name == "master":
            self.start_master()
        else:
            self.start_agent(name)
        self.write_state()

    def write_state(self) -> None:
        """``DIR/cell.json``: where everything is (for people and tests)."""
        self.addresses.update((m["name"], m["address"]) for m in self.machines_up() if m["name"] in self.names)
        machines = self.addresses
        state = {"master": {"url": self.url, "pid": self.procs["master"].pid, "log": str(self.dir / "logs/master.log")},
                 "agents": {n: {"pid": self.procs[n].pid, "address": machines.get(n, ""),
                                "log": str(self.dir / "logs" / f"{n}.log"), "cgroup_root": f"{self.tag}-{n}"}
                            for n in self.names},
                 "store": f"sqlite:///{self.dir / 'state.db'}", "tokens": str(self.dir / "tokens.yaml"),
                 "pid": os.getpid()}
        (self.dir / "cell.json").write_text(json.dumps(state, indent=2))

    # ---- stopping ------------------------------------------------------------------------------

    def _wait(self, procs: list[subprocess.Popen], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop(self) -> None:
        """Agents (they kill their tasks), then the master, then anything left over."""
        import psutil

        tracked: list[psutil.Process] = []
        for proc in self.procs.values():
            try:
                tracked += psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                pass
        agents = [p for n, p in self.procs.items() if n != "master" and p.poll() is None]
        for proc in agents:
            proc.send_signal(signal.SIGTERM)
        self._wait(agents, self.kill_grace_s + 10.0)
        master = self.procs.get("master")
        if master is not None and master.poll() is None:
            master.send_signal(signal.SIGTERM)
            self._wait([master], 20.0)
        # The children's descendants, and orphans (tasks of an agent that was killed with -9), which
        # were re-parented to us if we are a subreaper.
        left = tracked + (psutil.Process().children(recursive=True) if self.reaper else [])
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=5)
        self._remove_cgroups()
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper.reap_once()  # what exited while the cell stopped
            self._reaper = None
        if self._client is not None:
            self._client.close()
            self._client = None
        for log in self._logs:
            log.close()
        self._logs.clear()
        lock = getattr(self, "_lock", None)
        if lock is not None and not lock.closed:
            lock.close()  # releases the directory

    def _remove_cgroups(self) -> None:
        from corral.agent import cgroups

        mounts = cgroups.discover()
        for mount in [mounts.v2, *mounts.v1.values()]:
            if mount is None:
                continue
            for name in self.names:
                root = mount / f"{self.tag}-{name}"
                if not root.is_dir():
                    continue
                for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [root]:
                    try:
                        for pid in (d / "cgroup.procs").read_text().split():
                            try:
                                os.kill(int(pid), signal.SIGKILL)
                            except (ProcessLookupError, ValueError):
                                pass
                    except OSError:
                        pass
                    for _ in range(50):
                        try:
                            d.rmdir()
                            break
                        except FileNotFoundError:
                            break
                        except OSError:
                            time.sleep(0.02)


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(
        agents: int = typer.Option(2, "--agents", min=1, max=64, help="how many agents (machines) to start"),
        directory: Path = typer.Option(Path(".corral"), "--dir", help="the cell's store, tokens, logs and agent state"),
        port: int = typer.Option(7100, "--port", help="the master's port on 127.0.0.1 (0: any free port); with "
                                                     "--replicas, the first master's (the others follow it)"),
        replicas: int = typer.Option(1, "--replicas", min=1, max=7,
                                     help="masters on a local 3-member etcd cluster, one elected leader (needs "
                                          "etcd: apt-get install etcd-server); 1: one master on SQLite"),
        capacity: str = typer.Option("", "--capacity", help="each agent's capacity, e.g. cpu=4,memory=8Gi "
                                                            "(default: this machine's)"),
        poll_interval: float = typer.Option(1.0, "--poll-interval", help="seconds between the master's polls"),
        policy: str = typer.Option(None, "--policy", help="the master's scheduling policy, as corral sim --policy "
                                                         "(default: hybrid)"),
        demo: bool = typer.Option(False, "--demo", help="submit the example jobs and show how they are doing"),
        examples: Path = typer.Option(None, "--examples", help="where --demo finds prep.yaml, batch.yaml and "
                                                               "service.yaml (default: the repository's examples/)"),
        write_config: bool = typer.Option(True, "--write-config/--no-write-config",
                                          help="write the CLI config (address and admin token)"),
        log_format: LogFormat = typer.Option("text", "--log-format", help="the master's and agents' logs: "
                                                                          "text or JSON lines"),
        log_level: LogLevel = typer.Option("info", "--log-level"),
        tls: bool = typer.Option(False, "--tls", help="HTTPS between everything, certificates from a cell CA made "
                                                      "in DIR/ca; agents present certificates naming their machine; "
                                                      "with --replicas, etcd over TLS with client certificates"),
    ) -> None:
        """Start a local cell: a master and N agents on 127.0.0.1; Ctrl-C stops everything."""
        def echo(text: str) -> None:
            typer.echo(text)

        if policy is not None:
            from corral.cli.master import check_policy

            check_policy(policy, command="up")

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())
        from corral.cli.reaper import become_subreaper

        from corral.cli.up_serve import make_cell, serve

        reaper = become_subreaper()
        cell = make_cell(replicas, directory, agents=agents, port=port, poll_interval_s=poll_interval,
                         capacity=capacity, echo=echo, policy=policy, log_format=log_format, log_level=log_level,
                         tls=tls)
        if reaper:
            cell.start_reaper()
        code = 0
        try:
            try:
                cell.start()
            except RuntimeError as e:
                typer.echo(f"corral up: {e}", err=True)
                code = 1
            if not code:
                code = serve(cell, agents, write_config, demo, reaper, stop, echo, examples)
        finally:
            if not code:
                echo("corral up: stopping the cell")
            cell.stop()
            if not code:
                echo("corral up: stopped")
        if code:
            raise typer.Exit(code)
