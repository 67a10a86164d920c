"""Machines failing under a live cell: an agent killed with -9, an agent frozen (a partition) that
comes back. Bounded waits; the fixture stops the cell and checks nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.e2e.conftest import alive, wait_until

SLEEP = ["-c", "exec sleep 600"]


def placed(cell, job: str) -> dict[str, str]:
    return {t["name"]: t["machine"] for t in cell.tasks(job) if t["state"] == "running"}


def running_pids(cell, machine: str) -> dict[str, int]:
    return {t["task_id"]: t["pid"] for t in cell.agent_state(machine)["tasks"] if t["state"] == "running"}


def test_an_agent_killed_with_9_is_started_again_and_no_task_runs_twice(fresh_cell):
    cell = fresh_cell
    assert cell.corral("submit", cell.spec("svc", tasks=4, command="sh", args=SLEEP)).returncode == 0
    where = wait_until(lambda: len(placed(cell, "svc")) == 4 and placed(cell, "svc"), 15, "4 running tasks")
    victim = sorted(set(where.values()), key=lambda m: -list(where.values()).count(m))[0]
    survivor = next(n for n in cell.info["agents"] if n != victim)
    orphans = wait_until(lambda: running_pids(cell, victim) if len(running_pids(cell, victim))
                         == list(where.values()).count(victim) else None, 10, f"{victim} to run its tasks")
    old_pid = cell.info["agents"][victim]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    # corral up starts the agent again on its state directory; whether the master declared the
    # machine lost and moved its tasks first (3 missed polls of 0.3 s) or not, in the end every
    # task runs exactly once: where it ran (re-adopted: the same pid) or on the other machine
    # (the restarted agent killed its copy).
    wait_until(lambda: (cell.info.update(json.loads((cell.dir / "cell.json").read_text())) or True)
               and cell.info["agents"][victim]["pid"] != old_pid, 30, f"corral up to start {victim} again")
    wait_until(lambda: {m["name"]: m["state"] for m in cell.api("/machines")["machines"]} == {victim: "up",
                                                                                            survivor: "up"},
               30, f"{victim} to be up again")

    def settled():
        cell.info.update(json.loads((cell.dir / "cell.json").read_text()))
        tasks = placed(cell, "svc")
        here = {**running_pids(cell, victim), **running_pids(cell, survivor)}
        return len(tasks) == 4 and len(here) == 4 and set(here) == set(tasks) \
            and not any(alive(pid) for t, pid in orphans.items() if here.get(t) != pid) and (tasks, here)

    tasks, here = wait_until(settled, 30, "every task to run exactly once")
    for task, pid in orphans.items():
        if here[task] == pid:  # re-adopted: the master kept it where it was
            assert tasks[task] == victim
    out = cell.out.read_text()
    assert f"corral up: {victim} exited with -9; starting it again" in out, out[-2000:]


def test_a_master_killed_with_9_is_started_again_from_its_store_and_the_tasks_run_on(fresh_cell):
    cell = fresh_cell
    assert cell.corral("submit", cell.spec("keep", tasks=3, command="sh", args=SLEEP)).returncode == 0
    wait_until(lambda: len(placed(cell, "keep")) == 3, 15, "3 running tasks")
    pids = wait_until(lambda: (lambda p: len(p) == 3 and p)({**running_pids(cell, "m1"), **running_pids(cell, "m2")}),
                      10, "the agents to run them")
    old = cell.info["master"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: json.loads((cell.dir / "cell.json").read_text())["master"]["pid"] != old, 30,
               "corral up to start the master again")
    assert all(alive(pid) for pid in pids.values())  # the agents and their tasks ran on meanwhile
    assert cell.proc.poll() is None
    wait_until(lambda: len(placed(cell, "keep")) == 3, 20, "the new master to show the job running")
    time.sleep(1.0)  # a few polls: nothing was started again or moved
    assert {**running_pids(cell, "m1"), **running_pids(cell, "m2")} == pids
    assert cell.api("/jobs/keep")["state"] == "running"
    out = cell.out.read_text()
    assert "corral up: master exited with -9; starting it again" in out and "corral up: master is back" in out, out


def test_a_frozen_agent_loses_its_tasks_and_on_return_kills_the_copies_placed_elsewhere(fresh_cell):
    cell = fresh_cell
    assert cell.corral("submit", cell.spec("part", tasks=4, command="sh", args=SLEEP)).returncode == 0
    where = wait_until(lambda: len(placed(cell, "part")) == 4 and placed(cell, "part"), 15, "4 running tasks")
    frozen = sorted(set(where.values()), key=lambda m: -list(where.values()).count(m))[0]
    other = next(n for n in cell.info["agents"] if n != frozen)
    stale = wait_until(lambda: {t["task_id"]: t["pid"] for t in cell.agent_state(frozen)["tasks"]
                                if t["state"] == "running"} or None, 10, f"{frozen} to report its tasks")
    pid = cell.info["agents"][frozen]["pid"]
    os.kill(pid, signal.SIGSTOP)  # the agent stops answering; its tasks keep running
    try:
        wait_until(lambda: set(placed(cell, "part").values()) == {other} and len(placed(cell, "part")) == 4,
                   10, f"every task to move to {other}")
        assert all(alive(p) for p in stale.values())  # still running on the partitioned machine
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: {m["name"]: m["state"] for m in cell.api("/machines")["machines"]}[frozen] == "up",
               10, f"{frozen} to come back up")
    # The returning agent is told what the master wants there: nothing of these; it kills its copies.
    wait_until(lambda: not any(alive(p) for p in stale.values()), 15, "the stale copies to be killed")
    assert set(placed(cell, "part").values()) == {other}
    assert not [t for t in cell.agent_state(frozen)["tasks"] if t["state"] in ("starting", "running", "backoff")]
