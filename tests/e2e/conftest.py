"""A real local cell for end-to-end tests: ``corral up`` as a child process (a master and agents,
each a process of its own, real HTTP on 127.0.0.1), stopped and checked for leftovers after use."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1) -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = predicate()
        except (httpx.HTTPError, KeyError, ValueError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")
        time.sleep(every_s)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Cell:
    """``corral up`` in ``tmp``: its CLI config, tokens and ``cell.json``; ``corral(...)`` runs the CLI."""

    def __init__(self, tmp: Path, agents: int = 2, poll_interval_s: float = 0.3):
        self.tmp, self.dir = tmp, tmp / "cell"
        self.agents, self.poll_interval_s = agents, poll_interval_s
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "CORRAL_CONFIG": str(tmp / "config.yaml"),
                    "PYTHONUNBUFFERED": "1"}
        for key in ("CORRAL_ADDR", "CORRAL_TOKEN"):
            self.env.pop(key, None)
        self.proc: subprocess.Popen | None = None
        self.out = tmp / "up.out"
        self.info: dict[str, Any] = {}
        self.seen_pids: set[int] = set()  # task processes seen during the test: none may outlive the cell
        self.extra: list[str] = []  # more options for corral up

    def start(self, timeout_s: float = 40.0) -> "Cell":
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "corral.cli.main", "up", "--agents", str(self.agents), "--dir", str(self.dir),
                 "--port", "0", "--poll-interval", str(self.poll_interval_s), "--capacity", "cpu=4,memory=4Gi",
                 *self.extra],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, cwd=self.tmp,
                start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or b"CLI config" in self.out.read_bytes(), timeout_s,
                   "corral up to print where everything is")
        if self.proc.poll() is not None:
            raise RuntimeError(f"corral up exited with {self.proc.returncode}:\n{self.out.read_text()[-3000:]}")
        self.info = json.loads((self.dir / "cell.json").read_text())
        config = yaml.safe_load((self.tmp / "config.yaml").read_text())
        self.url, self.token = config["addr"], config["token"]
        masters = self.info["masters"].values() if "masters" in self.info else [self.info["master"]]
        assert self.url == ",".join(m["url"] for m in masters)  # a replicated cell has several
        tokens = yaml.safe_load((self.dir / "tokens.yaml").read_text())
        self.agent_tokens = {e["user"][len("agent-"):]: t for t, e in tokens.items() if e["role"] == "agent"}
        return self

    # ---- talking to it -------------------------------------------------------------------------

    def corral(self, *args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=self.env, cwd=self.tmp,
                              capture_output=True, text=True, timeout=timeout_s)

    def api(self, path: str) -> Any:
        r = httpx.get(self.url + "/api/v1" + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=5.0)
        r.raise_for_status()
        return r.json()

    def tasks(self, job: str) -> list[dict[str, Any]]:
        return self.api(f"/jobs/{job}/tasks")["tasks"]

    def agent_state(self, name: str) -> dict[str, Any]:
        address = self.info["agents"][name]["address"]
        r = httpx.get(address + "/v1/state", headers={"Authorization": f"Bearer {self.agent_tokens[name]}"},
                      timeout=5.0)
        r.raise_for_status()
        state = r.json()
        self.seen_pids |= {t["pid"] for t in state["tasks"] if t.get("pid")}
        return state

    def spec(self, name: str, **fields: Any) -> str:
        spec = {"name": name, "resources": {"cpu": "100m", "memory": "32Mi"}, **fields}
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        return str(path)

    # ---- stopping ------------------------------------------------------------------------------

    def pids(self) -> list[int]:
        return [self.info["master"]["pid"], *(a["pid"] for a in self.info.get("agents", {}).values())]

    def stop(self) -> None:
        """SIGTERM ``corral up`` as Ctrl-C would; SIGKILL everything if it does not stop in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in [*self.pids(), *self.seen_pids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def leftovers(self) -> list[str]:
        """Processes and control groups the cell left behind (should be none)."""
        found = [f"process {pid}" for pid in [*self.pids(), *self.seen_pids] if alive(pid)]
        from corral.agent import cgroups

        mounts = cgroups.discover()
        for mount in [mounts.v2, *mounts.v1.values()]:
            for agent in self.info.get("agents", {}).values():
                if mount is not None and (mount / agent["cgroup_root"]).exists():
                    found.append(f"cgroup {mount / agent['cgroup_root']}")
        return found


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    c = Cell(tmp_path_factory.mktemp("cell"))
    try:
        yield c.start()
    finally:
        c.stop()
    assert c.proc.returncode == 0, c.out.read_text()[-2000:]
    assert "corral up: stopped" in c.out.read_text()
    assert not c.leftovers(), c.leftovers()


@pytest.fixture
def fresh_cell(tmp_path):
    c = Cell(tmp_path)
    try:
        yield c.start()
    finally:
        c.stop()
    assert not c.leftovers(), c.leftovers()


def task_line(output: str, index: int) -> str:
    for line in output.splitlines():
        if re.match(rf"^{index}\s", line):
            return line
    return ""
