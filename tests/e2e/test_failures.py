"""Machines failing under a live cell: an agent killed with -9, an agent frozen (a partition) that
comes back. Bounded waits; the fixture stops the cell and checks nothing is left behind."""

from __future__ import annotations

import os
import signal
import time

import psutil

from tests.e2e.conftest import alive, wait_until

SLEEP = ["-c", "exec sleep 600"]


def placed(cell, job: str) -> dict[str, str]:
    return {t["name"]: t["machine"] for t in cell.tasks(job) if t["state"] == "running"}


def test_the_tasks_of_an_agent_killed_with_9_are_rescheduled_on_the_other_agent(fresh_cell):
    cell = fresh_cell
    assert cell.corral("submit", cell.spec("svc", tasks=4, command="sh", args=SLEEP)).returncode == 0
    where = wait_until(lambda: len(placed(cell, "svc")) == 4 and placed(cell, "svc"), 15, "4 running tasks")
    victim = sorted(set(where.values()), key=lambda m: -list(where.values()).count(m))[0]
    survivor = next(n for n in cell.info["agents"] if n != victim)
    orphans = wait_until(lambda: [t["pid"] for t in cell.agent_state(victim)["tasks"] if t["state"] == "running"]
                         if sum(t["state"] == "running" for t in cell.agent_state(victim)["tasks"])
                         == list(where.values()).count(victim) else None, 10, f"{victim} to run its tasks")
    os.kill(cell.info["agents"][victim]["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    # 3 missed polls of 0.3 s, then rescheduling: well within 10 s.
    wait_until(lambda: placed(cell, "svc") and set(placed(cell, "svc").values()) == {survivor}
               and len(placed(cell, "svc")) == 4, 10, f"every task to run on {survivor}")
    elapsed = time.monotonic() - killed_at
    assert elapsed < 10
    machines = {m["name"]: m["state"] for m in cell.api("/machines")["machines"]}
    assert machines == {victim: "lost", survivor: "up"}
    moved = [n for n, m in where.items() if m == victim]
    history = cell.api(f"/tasks/{moved[0]}")["history"]
    assert [h["via"] for h in history][-2:] == ["lost", "schedule"], history
    assert "stopped answering" in history[-2]["note"] and history[-1]["note"] == f"on {survivor}"
    # The dead agent's tasks were orphaned to corral up (a subreaper); one that exits is reaped by it,
    # not left a zombie.
    wait_until(lambda: psutil.Process(orphans[0]).ppid() == cell.proc.pid, 5, "corral up to adopt the orphan")
    os.kill(orphans[0], signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(orphans[0]), 5, "corral up to reap the orphan")
    running = {t["task_id"] for t in cell.agent_state(survivor)["tasks"] if t["state"] == "running"}
    wait_until(lambda: {t["task_id"] for t in cell.agent_state(survivor)["tasks"] if t["state"] == "running"}
               >= set(where), 10, f"{survivor}'s agent to run all 4 tasks (has {running})")


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
