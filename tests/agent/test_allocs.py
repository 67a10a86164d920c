"""Allocs on the agent, with real processes: a parent cgroup per alloc, its tasks' cgroups inside it."""

from __future__ import annotations

import sys

import pytest

from corral.agent import cgroups
from corral.agent.isolation import RLIMIT

from .conftest import wait_until
from .test_processes import launch, state_of

MiB = 2**20
HOLD = "import time; x = b'x' * ({mb} * 2**20); print('holding', flush=True); time.sleep(60)"


@pytest.fixture
def cgroup_runner(make_runner, isolation):
    if isolation.name == RLIMIT:
        pytest.skip("allocs need a writable cgroup (v1 or v2); this machine has none")
    return make_runner(kill_grace_s=0.5)


def alloc(memory: int, cpu: int = 2000, id: str = "web-allocs.3") -> dict:
    return {"id": id, "resources": {"cpu": cpu, "memory": memory}}


def memory_dir(runner, box_key: str):
    box_dirs = runner.isolation.roots
    return box_dirs.get("memory", box_dirs.get("unified")) / box_key


def memory_limit(directory) -> int:
    name = "memory.limit_in_bytes" if (directory / "memory.limit_in_bytes").exists() else "memory.max"
    return int(cgroups.read(directory / name))


def test_tasks_of_two_jobs_in_one_alloc_share_its_memory_limit(cgroup_runner):
    runner = cgroup_runner
    # Each task may use 256Mi by its own limit; together they may use the alloc's 96Mi.
    own = {"cpu": 500, "memory": 256 * MiB}
    runner.submit(launch("0.web.alice.local", sys.executable, "-c", HOLD.format(mb=60), resources=own,
                         alloc=alloc(96 * MiB), restart={"max_failures": 1}))
    wait_until(lambda: "holding" in runner.logs("0.web.alice.local", "stdout", 5), 10, "the web server to hold 60Mi")
    parent = memory_dir(runner, "alloc-web-allocs.3")
    assert memory_limit(parent) == 96 * MiB
    (proc,) = runner.procs.values()
    assert proc.box.key.startswith("alloc-web-allocs.3/"), "the task's cgroup is inside its alloc's"
    assert memory_limit(memory_dir(runner, proc.box.key)) == 256 * MiB
    # The log saver of another job, in the same alloc: alone it would fit, beside the server it does not.
    runner.submit(launch("0.logsaver.alice.local", sys.executable, "-c", HOLD.format(mb=60), resources=own,
                         alloc=alloc(96 * MiB), restart={"max_failures": 1}))
    names = ("0.web.alice.local", "0.logsaver.alice.local")
    wait_until(lambda: any(state_of(runner, n) == "failed" for n in names), 15, "the alloc's limit to kill one")
    dead = [n for n in names if state_of(runner, n) == "failed"]
    status = runner.status(dead[0])
    assert status["exit_code"] == -9
    assert "OOM" in status["last_error"] and "96Mi" in status["last_error"], status["last_error"]
    for name in names:
        runner.submit(launch_kill(name))
    wait_until(lambda: not runner.allocs.boxes, 10, "the alloc's cgroup to go with its last task")
    assert not parent.exists()


def test_the_alloc_limit_holds_even_when_the_tasks_own_limit_would_allow_more(cgroup_runner):
    runner = cgroup_runner
    runner.submit(launch("hog", sys.executable, "-c", HOLD.format(mb=200),
                         resources={"cpu": 500, "memory": 512 * MiB}, alloc=alloc(64 * MiB, id="a1"),
                         restart={"max_failures": 1}))
    wait_until(lambda: state_of(runner, "hog") == "failed", 15, "the alloc's limit to stop the hog")
    assert "holding" not in runner.logs("hog", "stdout", 5)
    status = runner.status("hog")
    assert status["exit_code"] == -9 and "64Mi" in status["last_error"]
    wait_until(lambda: not runner.allocs.boxes, 10, "the alloc's cgroup to be removed")


def test_a_task_alone_within_the_alloc_runs_and_a_later_launch_updates_the_alloc_limits(cgroup_runner):
    runner = cgroup_runner
    runner.submit(launch("t1", "sleep", "60", resources={"cpu": 100, "memory": 32 * MiB}, alloc=alloc(64 * MiB, id="a2")))
    wait_until(lambda: state_of(runner, "t1") == "running", 5, "t1 to run")
    runner.submit(launch("t2", "sleep", "60", resources={"cpu": 100, "memory": 32 * MiB}, alloc=alloc(128 * MiB, id="a2")))
    wait_until(lambda: state_of(runner, "t2") == "running", 5, "t2 to run")
    assert memory_limit(memory_dir(runner, "alloc-a2")) == 128 * MiB
    assert len(runner.allocs.members["a2"]) == 2
    for name in ("t1", "t2"):
        runner.submit(launch_kill(name))
    wait_until(lambda: not runner.allocs.boxes, 10, "the alloc's cgroup to be removed")


def launch_kill(task_id: str):
    from corral.agent import supervisor as sv

    return sv.Kill(task_id)


def test_the_launches_the_master_sends_nest_two_jobs_of_one_alloc_in_its_cgroup(cgroup_runner):
    """End to end through the master core: an alloc set of one 96Mi alloc, a web server and a log
    saver of two jobs placed in it (48Mi each: the master fits their limits in the alloc's room; a
    third does not fit and waits); the StartTask bodies the commit emits are what the agent runs:
    both under the alloc's parent cgroup at the alloc's limit, each at its own limit, their memory
    charged to the parent together."""
    from corral.agent.launch import parse_launch
    from corral.agent import supervisor as sv
    from corral.master.commands import StartTask, Submit
    from tests.master.helpers import Harness

    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi")
    h.run(Submit({"kind": "allocset", "name": "web-allocs", "user": "alice", "count": 1,
                  "resources": {"cpu": "2", "memory": 96 * MiB}}))
    h.schedule()
    for name in ("web", "logsaver", "extra"):
        h.run(Submit({"name": name, "user": "alice", "alloc": "web-allocs", "command": sys.executable,
                      "args": ["-c", HOLD.format(mb=32)], "restart": {"max_failures": 1},
                      "resources": {"cpu": "500m", "memory": 48 * MiB}}))
    launches = {e.task: e.launch for e in h.schedule().effects if isinstance(e, StartTask)}
    assert set(launches) == {"0.web.alice.local", "0.logsaver.alice.local"}
    assert h.core.pending_reason(h.task("extra"))[0] == "alloc web-allocs/0 has 0B memory left, task asks 48Mi"
    alloc_id = h.task("web-allocs").name
    runner = cgroup_runner
    for name, body in launches.items():
        runner.submit(sv.Launch(parse_launch(body)))
        wait_until(lambda: "holding" in runner.logs(name, "stdout", 5), 10, f"{name} to hold 32Mi")
    parent = memory_dir(runner, f"alloc-{alloc_id}")
    assert memory_limit(parent) == 96 * MiB
    for proc in runner.procs.values():
        assert proc.box.key.startswith(f"alloc-{alloc_id}/")
        assert memory_limit(memory_dir(runner, proc.box.key)) == 48 * MiB
    usage = "memory.usage_in_bytes" if (parent / "memory.usage_in_bytes").exists() else "memory.current"
    assert int(cgroups.read(parent / usage)) >= 64 * MiB, "both tasks' memory is charged to their alloc"
    for name in launches:
        runner.submit(launch_kill(name))
    wait_until(lambda: not runner.allocs.boxes, 10, "the alloc's cgroup to go with its last task")
