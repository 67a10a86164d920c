"""``corral allocs``, ``corral status ALLOCSET`` and ``corral why`` for allocs and the tasks that wait
for room in one, against a real master over HTTP (in-process CLI runner, master in a thread)."""

from __future__ import annotations

import json

import pytest

from corral.master.commands import RegisterMachine
from tests.cli.test_client import corral, master, until, write  # noqa: F401 (the fixture)

ALLOCSET = {"kind": "allocset", "name": "web-allocs", "count": 2, "resources": {"cpu": "1", "memory": "1Gi"}}


def member(name, cpu):
    return {"name": name, "tasks": 1, "alloc": "web-allocs", "command": "sleep",
            "resources": {"cpu": cpu, "memory": "128Mi"}}


@pytest.fixture
def cell(master, tmp_path):  # noqa: F811
    master.master.execute(RegisterMachine("m1", {"cpu": "4", "memory": "8Gi"}))
    assert corral("submit", write(tmp_path, "set.yaml", ALLOCSET))[1].strip() == "web-allocs.alice: pending (2 tasks)"
    until(lambda: all(a["state"] == "running"
                      for a in json.loads(corral("allocs", "-o", "json")[1])["allocsets"][0]["allocs"]))
    assert corral("submit", write(tmp_path, "web.yaml", member("web", "800m")))[0] == 0
    until(lambda: json.loads(corral("status", "web", "-o", "json")[1])["state"] == "running")
    return master


def test_allocs_lists_each_alloc_with_its_machine_resources_used_and_tasks(cell):
    code, out, _ = corral("allocs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "alloc set web-allocs.alice: running, priority 2, 2 allocs of cpu=1 memory=1Gi, jobs web.alice"
    assert lines[1].split() == ["ALLOC", "STATE", "MACHINE", "CPU", "USED", "MEMORY", "USED", "TASKS"]
    assert lines[2].split() == ["web-allocs/0", "running", "m1", "800m/1", "128Mi/1Gi", "0.web.alice.local"]
    assert lines[3].split()[:5] == ["web-allocs/1", "running", "m1", "0/1", "0B/1Gi"]
    data = json.loads(corral("allocs", "-o", "json")[1])
    assert data["count"] == 1 and data["allocsets"][0]["allocs"][0]["used"]["cpu"] == 800


def test_status_of_an_alloc_set_prints_its_allocs_and_of_a_job_its_alloc_set(cell):
    code, out, _ = corral("status", "web-allocs")
    assert code == 0 and out.startswith("alloc set web-allocs.alice: running") and "web-allocs/1" in out
    code, out, _ = corral("status", "web")
    assert "in alloc set web-allocs" in out.splitlines()[0]


def test_why_a_task_waits_for_room_in_its_alloc_and_why_an_alloc_waits(cell, tmp_path):
    assert corral("submit", write(tmp_path, "saver.yaml", member("logsaver", "500m")))[0] == 0
    until(lambda: "alloc" in (json.loads(corral("why", "logsaver/0", "-o", "json")[1])["summary"]))
    code, out, _ = corral("why", "logsaver/0")
    assert code == 0 and out.strip() == ("0.logsaver.alice.local (pending): alloc web-allocs/0 has 200m cpu left, "
                                         "task asks 500m")
    big = {**ALLOCSET, "name": "big-allocs", "count": 1, "resources": {"cpu": "64", "memory": "1Gi"}}
    corral("submit", write(tmp_path, "big.yaml", big))
    until(lambda: "machines are available" in json.loads(corral("why", "big-allocs/0", "-o", "json")[1])["summary"])
    code, out, _ = corral("why", "big-allocs/0")
    assert out.startswith("0.big-allocs.alice.local (pending): 0/1 machines are available: 1 insufficient cpu")
    code, out, _ = corral("why", "big-allocs")
    assert out.startswith("big-allocs.alice allocs 0 (1 pending): 0/1 machines")


def test_killing_the_alloc_set_kills_its_jobs(cell):
    code, out, _ = corral("kill", "web-allocs")
    assert code == 0 and out.strip() == "web-allocs.alice: killed"
    assert json.loads(corral("status", "web", "-o", "json")[1])["state"] == "killed"
    assert corral("allocs")[1].strip() == "no alloc sets"
