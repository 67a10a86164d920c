"""An agent killed with -9 and started again on the same state directory: real master and agent
processes on 127.0.0.1, real tasks in real control groups.

* The master still assigns the tasks to it: the restarted agent re-adopts them (the same pids, no
  restart, nothing extra running).
* The master moved them while the agent was down: the restarted agent's copies (orphans) are
  killed, and only the moved tasks run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from corral.cli.up import ensure_cell_tokens
from tests.e2e.conftest import alive, wait_until
from tests.master.procs import MasterProcess, child_env

N = 4


class AgentProcess:
    def __init__(self, tmp: Path, name: str, master: str, token: str):
        self.tmp, self.name, self.master, self.token = tmp, name, master, token
        self.state_dir = tmp / "agents" / name
        self.cgroup_root = f"corral-test-{os.getpid()}-{uuid.uuid4().hex[:6]}-{name}"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> "AgentProcess":
        if not self.port:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
        log = open(self.tmp / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "corral.cli.main", "agent", "--master", self.master, "--name", self.name,
             "--state-dir", str(self.state_dir), "--cgroup-root", self.cgroup_root, "--port", str(self.port),
             "--kill-grace", "1", "--capacity", "cpu=4,memory=4Gi"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env(CORRAL_AGENT_TOKEN=self.token), cwd=self.tmp, start_new_session=True)
        log.close()
        wait_until(lambda: self.state() is not None, 20, f"agent {self.name} to serve")
        return self

    def state(self) -> dict | None:
        try:
            r = httpx.get(f"http://127.0.0.1:{self.port}/v1/state",
                          headers={"Authorization": f"Bearer {self.token}"}, timeout=2.0)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def running(self) -> dict[str, int]:
        state = self.state() or {"tasks": []}
        return {t["task_id"]: t["pid"] for t in state["tasks"] if t["state"] == "running"}

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Rig:
    def __init__(self, tmp: Path, names: list[str], misses_to_down: int):
        self.tmp = tmp
        self.admin, tokens = ensure_cell_tokens(tmp / "tokens.yaml", "tester", names)
        self.master = MasterProcess(f"sqlite:///{tmp / 'state.db'}", tmp / "tokens.yaml", tmp,
                                    ["--poll-interval", "0.3", "--misses-to-down", str(misses_to_down)]).start()
        self.agents = {n: AgentProcess(tmp, n, self.master.url, tokens[n]) for n in names}
        for agent in self.agents.values():
            agent.start()
        wait_until(lambda: len(self.machines("up")) == len(names), 20, "every agent to register")
        self.seconds = str(random.randint(100_000, 999_999))  # tells this test's sleeps from any other

    def api(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.master.url + "/api/v1" + path,
                             headers={"Authorization": f"Bearer {self.admin}"}, timeout=10.0, **kw)

    def machines(self, state: str) -> list[str]:
        return [m["name"] for m in self.api("GET", "/machines").json()["machines"] if m["state"] == state]

    def submit(self, name: str, tasks: int) -> None:
        spec = {"name": name, "tasks": tasks, "command": "sleep", "args": [self.seconds],
                "resources": {"cpu": "100m", "memory": "32Mi"}}
        r = self.api("POST", "/jobs", json=spec)
        assert r.status_code == 201, r.text

    def placed(self, job: str) -> dict[str, str]:
        tasks = self.api("GET", f"/jobs/{job}/tasks").json()["tasks"]
        return {t["name"]: t["machine"] for t in tasks if t["state"] == "running"}

    def sleeps(self) -> list[int]:
        """The pids of this test's task processes, wherever they run."""
        found = []
        for p in psutil.process_iter(["cmdline", "status"]):
            if p.info["cmdline"] == ["sleep", self.seconds] and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        return sorted(found)

    def close(self) -> list[int]:
        """Stop the agents (they kill their tasks) and the master; the task processes left."""
        for agent in self.agents.values():
            agent.stop()
        deadline = time.monotonic() + 5
        while self.sleeps() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.master.stop()
        return self.sleeps()


@pytest.fixture
def rig_factory(tmp_path):
    rigs: list[Rig] = []

    def make(names: list[str], misses_to_down: int) -> Rig:
        rigs.append(Rig(tmp_path, names, misses_to_down))
        return rigs[-1]

    yield make
    for rig in rigs:
        leftovers = rig.close()
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        assert not leftovers, f"task processes outlived the agents' stop: {leftovers}"
        from tests.agent.conftest import cgroup_dirs

        for agent in rig.agents.values():
            assert not cgroup_dirs(agent.cgroup_root), f"{agent.name} left its cgroups behind"


@pytest.mark.slow  # two agent starts on a busy machine: about 35 s
def test_a_restarted_agent_re_adopts_the_tasks_the_master_still_assigns_to_it(rig_factory):
    rig = rig_factory(["m1"], misses_to_down=200)  # the master does not give up on m1 meanwhile
    agent = rig.agents["m1"]
    rig.submit("keep", N)
    before = wait_until(lambda: len(agent.running()) == N and agent.running(), 20, f"{N} running tasks")
    history_before = {t: len(rig.api("GET", f"/tasks/{t}").json()["history"]) for t in before}
    agent.kill9()
    assert all(alive(pid) for pid in before.values()), "the tasks died with their agent"
    agent.start()
    # The same tasks, the same processes: adopted, not started again.
    after = wait_until(lambda: len(agent.running()) == N and agent.running(), 10, "the restarted agent's tasks")
    assert after == before
    assert rig.sleeps() == sorted(before.values())  # nothing extra runs
    wait_until(lambda: len(rig.placed("keep")) == N, 10, "the master to show every task running")
    assert set(rig.placed("keep").values()) == {"m1"}
    # Some polls later the master still keeps them as they were: no new placement, no kill.
    m1_incarnation = agent.state()["incarnation"]
    wait_until(lambda: rig.api("GET", "/machines/m1").json().get("state") == "up", 5, "m1 to be up")
    time.sleep(1.5)  # five polls of 0.3 s
    assert agent.running() == before and agent.state()["incarnation"] == m1_incarnation
    for task, count in history_before.items():
        history = rig.api("GET", f"/tasks/{task}").json()["history"]
        assert len(history) == count, f"{task} was moved or restarted: {history}"
    assert rig.sleeps() == sorted(before.values())


@pytest.mark.slow
def test_a_restarted_agent_kills_its_copies_of_the_tasks_the_master_moved_while_it_was_down(rig_factory):
    rig = rig_factory(["m1", "m2"], misses_to_down=3)
    m1 = rig.agents["m1"]
    rig.submit("move", 2 * N)
    wait_until(lambda: len(rig.placed("move")) == 2 * N, 20, f"{2 * N} running tasks")
    orphans = wait_until(lambda: m1.running() or None, 10, "m1 to run some of them")
    m1.kill9()
    # Three missed polls: m1 is lost and its tasks go to m2; m1's copies run on unsupervised.
    wait_until(lambda: set(rig.placed("move").values()) == {"m2"} and len(rig.placed("move")) == 2 * N,
               20, "every task to move to m2")
    assert all(alive(pid) for pid in orphans.values())
    assert len(rig.sleeps()) == 2 * N + len(orphans)  # a moved task and its orphan both run now
    m1.start()
    wait_until(lambda: not any(alive(pid) for pid in orphans.values()), 15, "m1's orphans to be killed")
    wait_until(lambda: "m1" in rig.machines("up"), 10, "m1 to be up again")
    assert set(rig.placed("move").values()) == {"m2"} and len(rig.placed("move")) == 2 * N
    wait_until(lambda: len(rig.sleeps()) == 2 * N, 5, "exactly one process per task")
    assert not m1.running()


@pytest.mark.slow
def test_a_task_that_writes_on_while_its_agent_is_dead_keeps_running_and_loses_no_output(rig_factory):
    rig = rig_factory(["m1"], misses_to_down=200)
    agent = rig.agents["m1"]
    count = 'i=0; while :; do echo "line $i"; i=$((i+1)); sleep 0.02; done'
    r = rig.api("POST", "/jobs", json={"name": "chatty", "command": "sh", "args": ["-c", count],
                                       "resources": {"cpu": "100m", "memory": "32Mi"}})
    assert r.status_code == 201, r.text
    (task, pid), = wait_until(lambda: agent.running() or None, 20, "the task to run").items()
    log = agent.state_dir / "tasks" / task / "stdout.log"
    wait_until(lambda: log.exists() and log.read_text().count("\n") > 5, 10, "some output")
    agent.kill9()
    time.sleep(1.0)  # about 50 lines written while nobody reads: they wait in the pipe
    assert alive(pid), "the task died with its agent (a write to a closed pipe?)"
    agent.start()
    assert wait_until(lambda: agent.running() or None, 10, "the task adopted") == {task: pid}
    written = wait_until(lambda: (lambda n: n > 120 and n)(log.read_text().count("\n")), 15, "the output to go on")
    lines = log.read_text().splitlines()[:written]
    assert lines == [f"line {i}" for i in range(len(lines))], "a line was lost or garbled"
