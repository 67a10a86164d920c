"""The CPU of tasks placed in reclaimed room: the agent caps it where the master says (reclaimed.py),
in real control groups where this machine has writable ones (cpu.max on v2, cpu.cfs_quota_us on v1)."""

from __future__ import annotations

import httpx
import pytest

from corral.agent import supervisor as sv
from corral.agent.isolation import CGROUP_V2, RLIMIT
from corral.agent.launch import parse_launch
from corral.agent.reclaimed import MIN_QUOTA_US, ReclaimedCpu, caps, quota_file, quota_of

from .conftest import wait_until
from .test_api import AUTH, make_agent, task  # noqa: F401  (make_agent is a fixture)

CAPS = [
    ("a listed task gets the master's allowance below its own limit", {"t": 250}, {"t": 100_000}, {"t": 25_000}),
    ("an allowance above the task's own limit leaves the limit", {"t": 4000}, {"t": 100_000}, {"t": 100_000}),
    ("a task not listed keeps its own limit", {}, {"t": 100_000, "u": None}, {"t": 100_000, "u": None}),
    ("a task without a cap of its own gets the allowance", {"u": 500}, {"u": None}, {"u": 50_000}),
    ("an allowance of nothing is the kernel's floor", {"t": 0}, {"t": 100_000}, {"t": MIN_QUOTA_US}),
    ("allowances of tasks that do not run here are ignored", {"gone": 100}, {"t": 100_000}, {"t": 100_000}),
]


@pytest.mark.parametrize("case, allowed, own, want", CAPS, ids=[c[0] for c in CAPS])
def test_caps(case, allowed, own, want):
    assert caps(allowed, own) == want


def test_quota_of_millicores():
    assert quota_of(1000) == 100_000 and quota_of(1) == MIN_QUOTA_US


def _launch(task_id: str, cpu: int):
    return sv.Launch(parse_launch({"task_id": task_id, "command": "sleep", "args": ["30"],
                                   "resources": {"cpu": cpu, "memory": 64 * 2**20}}))


def _quota(isolation, box) -> str:
    text = quota_file(isolation, box).read_text().split()
    return text[0]


def test_a_reclaimed_task_quota_changes_when_the_agent_is_told_and_comes_back(make_runner, isolation):
    if isolation.name == RLIMIT:
        pytest.skip("no writable cgroup (v1 or v2) on this machine: there is no CPU quota to change")
    runner = make_runner()
    runner.submit(_launch("reclaimed", 1000), _launch("prod", 2000))
    wait_until(lambda: len(runner.procs) == 2, 5, "both tasks to start")
    boxes = {p.task_id: p.box for p in runner.procs.values()}
    if quota_file(isolation, boxes["reclaimed"]) is None:
        pytest.skip("the v1 cpu controller is not writable here")
    assert _quota(isolation, boxes["reclaimed"]) == "100000"
    throttle = ReclaimedCpu(runner)
    applied = throttle.set({"reclaimed": 250})
    assert applied == {"reclaimed": 25_000, "prod": 200_000}
    assert _quota(isolation, boxes["reclaimed"]) == "25000"  # the kernel's own file says so
    assert _quota(isolation, boxes["prod"]) == "200000"  # not listed: untouched
    throttle.set({})
    assert _quota(isolation, boxes["reclaimed"]) == "100000"  # its own limit back
    if isolation.name == CGROUP_V2:
        assert (boxes["reclaimed"].dirs["unified"] / "cpu.max").read_text().split() == ["100000", "100000"]


def test_a_task_started_after_it_was_listed_is_capped_at_the_next_tick(make_runner, isolation):
    if isolation.name == RLIMIT:
        pytest.skip("no writable cgroup (v1 or v2) on this machine: there is no CPU quota to change")
    runner = make_runner()
    throttle = ReclaimedCpu(runner)
    runner.tick_hooks.append(throttle.apply)
    throttle.set({"late": 100})
    runner.submit(_launch("late", 1000))
    wait_until(lambda: len(runner.procs) == 1, 5, "the task to start")
    box = next(iter(runner.procs.values())).box
    if quota_file(isolation, box) is None:
        pytest.skip("the v1 cpu controller is not writable here")
    wait_until(lambda: _quota(isolation, box) == "10000", 5, "the tick to cap the late task")


def test_put_reclaimed_checks_its_body_and_answers_the_quotas(make_agent):
    agent = make_agent()
    with httpx.Client(base_url=agent.address, headers=AUTH, timeout=5) as c:
        assert c.put("/v1/tasks/t1", json=task("t1")).status_code == 200
        wait_until(lambda: agent.runner.procs, 5, "t1 to start")
        for body, field in [({}, "cpu_milli"), ({"cpu_milli": [1]}, "cpu_milli"),
                            ({"cpu_milli": {"t1": -1}}, "cpu_milli.t1"), ({"cpu_milli": {"t1": True}}, "cpu_milli.t1"),
                            ({"cpu_milli": {"bad/id": 1}}, "cpu_milli.bad/id")]:
            r = c.put("/v1/reclaimed", json=body)
            assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, (body, r.text)
        r = c.put("/v1/reclaimed", json={"cpu_milli": {"t1": 50}})
        assert r.status_code == 200, r.text
        own = 10_000  # 100 millicores
        assert r.json()["cpu_quota_us"] == {"t1": own if agent.isolation.name == RLIMIT else min(own, quota_of(50))}
        assert agent.reclaimed.allowed == {"t1": 50}
        assert httpx.put(agent.address + "/v1/reclaimed", json={"cpu_milli": {}}, timeout=5).status_code == 401
