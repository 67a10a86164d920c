"""Real processes under a real cell: an OOM-killed task says so in `corral why` and `corral status`, and
a command health check gates a rolling update (paused at a failing task, then rolled back)."""

from __future__ import annotations

import sys

import pytest

from tests.e2e.conftest import task_line, wait_until

HOG = "x = bytearray(200 * 2**20); import time; time.sleep(60)"


def test_a_task_killed_by_its_cgroup_at_its_memory_limit_says_so_in_why_and_status(cell):
    machines = cell.api("/machines")["machines"]
    if any(m["isolation"] == "rlimit" for m in machines):
        pytest.skip("no writable memory cgroup here: under rlimit the allocation fails instead of an OOM kill")
    spec = cell.spec("hog", command=sys.executable, args=["-c", HOG], resources={"cpu": "100m", "memory": "64Mi"},
                     restart={"max_failures": 2, "backoff_s": 0.1, "backoff_max_s": 0.1})
    assert cell.corral("submit", spec).returncode == 0
    wait_until(lambda: cell.tasks("hog")[0]["state"] == "failed", 40, "the hog to fail on both machines")
    # Two OOM kills on each of the two machines it was tried on.
    why = cell.corral("why", "hog/0")
    assert why.returncode == 0, why.stderr
    assert "killed at its memory limit 64Mi, 4 times" in why.stdout, why.stdout
    status = cell.corral("status", "hog")
    assert "killed at its memory limit 64Mi, 4 times" in task_line(status.stdout, 0), status.stdout
    assert cell.tasks("hog")[0]["oom_kills"] == 4


def healthy(cell, job: str, version: int, tasks: int) -> bool:
    found = cell.tasks(job)
    return len(found) == tasks and all(t["state"] == "running" and t["health"] == "healthy" and t["version"] == version
                                       for t in found)


def test_a_failing_health_check_pauses_a_rolling_update_and_corral_rollback_restores_the_job(cell):
    check = {"command": ["true"], "interval_s": 0.2, "timeout_s": 2, "failures": 1, "initial_delay_s": 0}
    spec = cell.spec("svc", tasks=2, command="sleep", args=["300"], health_check=check)
    assert cell.corral("submit", spec).returncode == 0
    wait_until(lambda: healthy(cell, "svc", 1, 2), 20, "both tasks running and healthy")
    first = {t["index"]: (t["generation"], t["machine"]) for t in cell.tasks("svc")}

    bad = cell.spec("svc", tasks=2, command="sleep", args=["300"], health_check={**check, "command": ["false"]},
                    restart={"max_failures": 10, "backoff_s": 0.2, "backoff_max_s": 0.2})
    done = cell.corral("update", bad, "--max-unavailable", "1")
    assert done.returncode == 0 and "rolling restart" in done.stdout, (done.stdout, done.stderr)
    rollout = wait_until(lambda: (r := cell.api("/jobs/svc")["rollout"]) and r["state"] == "paused" and r, 20,
                         "the rollout to pause at the failing task")
    assert rollout["version"] == 2 and rollout["failed"] == [0] and "task 0 of version 2 failed" in rollout["reason"]
    status = cell.corral("status", "svc")
    assert "rollout to version 2: paused" in status.stdout, status.stdout
    # Paused: task 1 still runs version 1, untouched.
    one = next(t for t in cell.tasks("svc") if t["index"] == 1)
    assert (one["version"], one["generation"]) == (1, first[1][0]) and one["health"] == "healthy"

    back = cell.corral("rollback", "svc")
    assert back.returncode == 0 and "version 3" in back.stdout, (back.stdout, back.stderr)
    wait_until(lambda: healthy(cell, "svc", 3, 2), 20, "both tasks healthy on version 3 (the first spec)")
    one = next(t for t in cell.tasks("svc") if t["index"] == 1)
    assert one["generation"] == first[1][0], "task 1 ran the first spec all along: it is not restarted"
    assert "rollout to version 3: rolled back" in cell.corral("status", "svc").stdout
    again = cell.corral("rollback", "nosuchjob")
    assert again.returncode == 2 and "no job" in again.stderr
    assert cell.corral("kill", "svc").returncode == 0
