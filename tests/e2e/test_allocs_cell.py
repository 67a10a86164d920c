"""Alloc sets in a local cell (``corral up``: a master and two agent processes, real HTTP, real
processes and control groups): tasks of two jobs run inside the allocs the master placed, under
each alloc's parent cgroup where the agent has control groups; killing the set ends them all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import alive, wait_until

pytestmark = pytest.mark.slow


def write(cell, name, spec) -> str:
    path = Path(cell.tmp) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_two_jobs_run_in_the_allocs_of_one_set_on_real_agents_and_die_with_it(fresh_cell):
    cell = fresh_cell
    allocset = {"kind": "allocset", "name": "web-allocs", "count": 2, "max_per_domain": {"host": 1},
                "resources": {"cpu": "1", "memory": "256Mi"}}
    assert cell.corral("submit", write(cell, "set", allocset)).returncode == 0
    wait_until(lambda: all(a["state"] == "running" for a in cell.api("/allocs/web-allocs")["allocs"]), 15,
               "both allocs to be placed")
    for name in ("web", "logsaver"):
        spec = {"name": name, "tasks": 2, "alloc": "web-allocs", "command": "sh",
                "args": ["-c", f"echo {name} up; exec sleep 600"], "resources": {"cpu": "300m", "memory": "64Mi"}}
        done = cell.corral("submit", write(cell, name, spec))
        assert done.returncode == 0, done.stderr
    wait_until(lambda: all(t["state"] == "running" for j in ("web", "logsaver") for t in cell.tasks(j)), 20,
               "4 running tasks")
    view = cell.api("/allocs/web-allocs")
    for alloc in view["allocs"]:
        assert sorted(alloc["tasks"]) == sorted(f"{alloc['index']}.{j}.{view['user']}.local" for j in ("logsaver", "web"))
        assert alloc["used"]["cpu"] == 600 and alloc["used"]["memory"] == 128 * 2**20
        reported = wait_until(lambda: {t["task_id"]: t for t in cell.agent_state(alloc["machine"])["tasks"]
                                       if t["task_id"] in alloc["tasks"] and t["state"] == "running" and t["pid"]},
                              10, f"the agent of {alloc['machine']} to run {alloc['tasks']}")
        assert set(reported) == set(alloc["tasks"])
        isolation = cell.api(f"/machines/{alloc['machine']}").get("isolation", "")
        for status in reported.values():
            groups = Path(f"/proc/{status['pid']}/cgroup").read_text()
            if isolation.startswith("cgroup"):
                assert f"alloc-{alloc['id']}/" in groups, groups
    listed = cell.corral("allocs")
    assert listed.returncode == 0 and "600m/1" in listed.stdout and "128Mi/256Mi" in listed.stdout, listed.stdout
    # Polls later nothing was killed or started again: the link keeps tasks of allocs and sends no alloc.
    pids = set(cell.seen_pids)
    assert len(pids) == 4
    time.sleep(5 * cell.poll_interval_s + 1)
    assert all(alive(p) for p in pids)
    assert all(t["generation"] == 1 for j in ("web", "logsaver") for t in cell.tasks(j))
    for machine in cell.info["agents"]:
        assert not any("web-allocs" in t["task_id"] for t in cell.agent_state(machine)["tasks"])
    killed = cell.corral("kill", "web-allocs")
    assert killed.returncode == 0 and "killed" in killed.stdout, killed.stderr
    assert {j: cell.api(f"/jobs/{j}")["state"] for j in ("web", "logsaver")} == {"web": "killed", "logsaver": "killed"}
    wait_until(lambda: not any(alive(p) for p in pids), 15, "the tasks of the killed alloc set to end")
