"""External scheduler profiles over HTTP: snapshots and plans (plan_api.py), their refusals by field,
a plan gone stale on the way, and ``GET /api/v1/schedulers``; an ExternalScheduler loop in process."""

from __future__ import annotations

import time

import httpx
import pytest

from corral.master.auth import Tokens
from corral.master.external import ExternalScheduler
from corral.master.profiles import Profiles, SchedulerProfile
from corral.master.server import MasterServer, build_master

from tests.e2e.conftest import wait_until
from tests.master.conftest import TOKENS, auth

OPS, ALICE, PLANNER = auth("t-ops"), auth("t-alice"), auth("t-sched")
PROFILES = Profiles([SchedulerProfile("batch", "best-fit", external=True), SchedulerProfile("service", "hybrid")])


@pytest.fixture
def api(tmp_path):
    master = build_master(f"sqlite:///{tmp_path}/state.db", validate=True, schedule_interval_s=0.05,
                          profiles=PROFILES)
    tokens = Tokens.parse({**TOKENS, "t-sched": {"user": "batch-scheduler", "role": "scheduler"}})
    srv = MasterServer(master, tokens).start()
    try:
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=10.0) as c:
            yield c, srv
    finally:
        srv.stop()


def machine(c, name: str, cpu: str) -> None:
    c.post("/machines", json={"name": name, "address": "http://127.0.0.1:9", "capacity": {"cpu": cpu, "memory": "8Gi"}},
           headers=OPS).raise_for_status()


def job(c, name: str, cpu: str, **fields) -> None:
    c.post("/jobs", json={"name": name, "tasks": 1, "resources": {"cpu": cpu, "memory": "1Gi"}, **fields},
           headers=ALICE).raise_for_status()


def running(c, name: str) -> int:
    """Tasks placed (no agent runs them here: placed tasks stay ``starting``)."""
    states = c.get(f"/jobs/{name}", headers=ALICE).json()["task_states"]
    return states["starting"] + states["running"]


def loop(c) -> ExternalScheduler:
    def call(method, path, body=None):
        r = c.request(method, path, json=body, headers=PLANNER)
        r.raise_for_status()
        return r.json()
    return ExternalScheduler("batch", lambda p: call("GET", p), lambda p, b: call("POST", p, b))


def test_the_master_leaves_an_external_profiles_jobs_to_its_scheduler_which_places_them_through_the_api(api):
    c, srv = api
    machine(c, "m1", "8")
    job(c, "web", "1", priority=9, scheduler="service")
    job(c, "crunch", "2", scheduler="batch")
    wait_until(lambda: running(c, "web") == 1, 10.0, "web placed")  # the master runs the service profile itself
    time.sleep(0.3)
    assert running(c, "crunch") == 0  # ... but not the external one, and says so
    why = c.get("/jobs/crunch/tasks/0/why", headers=ALICE).json()
    assert "waiting for scheduler profile batch" in why["summary"] + str(why.get("detail")), why
    assert loop(c).round() == 0.0
    assert running(c, "crunch") == 1
    rows = {r["name"]: r for r in c.get("/schedulers", headers=ALICE).json()["schedulers"]}
    assert rows["batch"]["external"] and rows["batch"]["placements"] == 1 and rows["batch"]["jobs"] == 1
    assert rows["service"]["placements"] == 1 and not rows["service"]["external"]
    assert set(rows) == {"batch", "service", "default"}
    metrics = httpx.get(srv.url + "/metrics").text
    assert 'corral_scheduler_placements_total{scheduler="batch"} 1.0' in metrics


def test_a_plan_that_went_stale_on_its_way_is_not_committed_and_earns_a_backoff(api):
    c, srv = api
    srv.master.core.profiles.stats["batch"].backoff.base_s = 30.0  # long enough to outlast a loaded machine
    machine(c, "m1", "4")
    job(c, "crunch", "3", scheduler="batch", env={"DB_PASSWORD": "hunter2"})
    snap = c.get("/schedulers/batch/snapshot", headers=PLANNER).json()
    assert snap["state"]["jobs"]["crunch.alice"]["spec"]["env"] == {"DB_PASSWORD": ""}  # never the value
    assert [p["task"] for p in snap["pending"]] == ["0.crunch.alice.local"] and snap["policy"] == "best-fit"
    ext = loop(c)
    from corral.master.plan_wire import plan_body, rebuilt

    _, view, pending = rebuilt(snap)
    plan = ext._planner(snap).schedule(view, pending)
    job(c, "hog", "3", priority=9, scheduler="service")  # takes the machine meanwhile
    wait_until(lambda: running(c, "hog") == 1, 10.0, "hog placed")
    reply = c.post("/schedulers/batch/plans", json=plan_body(snap, plan), headers=PLANNER).json()
    assert reply["placed"] == 0 and reply["stale"] == ["0.crunch.alice.local"] and reply["backoff_s"] > 0
    assert running(c, "crunch") == 0
    row = next(r for r in c.get("/schedulers", headers=ALICE).json()["schedulers"] if r["name"] == "batch")
    assert row["conflicts"] == 1 and row["backoff"]["streak"] == 1
    again = c.get("/schedulers/batch/snapshot", headers=PLANNER).json()
    assert again["backoff_s"] > 0  # the external loop waits instead of planning again at once
    assert ext.round() > 0 and ext.counts.backoffs == 1


REFUSED = [
    ("a user token", "GET", "/schedulers/batch/snapshot", None, ALICE, 403, "authorization"),
    ("no token", "GET", "/schedulers/batch/snapshot", None, {}, 401, "authorization"),
    ("an unknown profile", "GET", "/schedulers/nosuch/snapshot", None, PLANNER, 404, "profile"),
    ("a profile the master runs", "GET", "/schedulers/service/snapshot", None, PLANNER, 409, "profile"),
    ("a plan without tokens", "POST", "/schedulers/batch/plans", {"seq": 1}, PLANNER, 400, "tokens"),
    ("a placement of a task not in the snapshot", "POST", "/schedulers/batch/plans",
     {"seq": 1, "tokens": {}, "placements": [{"task": "0.web.alice.local", "machine": "m1"}]}, PLANNER, 400,
     "placements[0].task"),
    ("a placement of another profile's task", "POST", "/schedulers/batch/plans",
     {"seq": 1, "tokens": {"0.web.alice.local": 0}, "placements": [{"task": "0.web.alice.local", "machine": "m1"}]},
     PLANNER, 400, "placements[0].task"),
    ("a score that is not a number", "POST", "/schedulers/batch/plans",
     {"seq": 1, "tokens": {}, "placements": [{"task": "t", "machine": "m1", "score": "high"}]}, PLANNER, 400,
     "placements.0.score"),
    ("an unknown key", "POST", "/schedulers/batch/plans", {"seq": 1, "tokens": {}, "colour": 1}, PLANNER, 400,
     "colour"),
]


@pytest.mark.parametrize("case, method, path, body, headers, status, field", REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_snapshot_and_plan_requests_are_refused_naming_the_field(api, case, method, path, body, headers,
                                                                     status, field):
    c, srv = api
    machine(c, "m1", "4")
    job(c, "web", "1", priority=9, scheduler="service")
    before = c.get("/jobs/web", headers=ALICE).json()
    r = c.request(method, path, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    after = c.get("/jobs/web", headers=ALICE).json()
    assert before["name"] == after["name"]


def test_a_scheduler_token_may_not_submit_jobs_and_an_unknown_scheduler_in_a_spec_is_refused(api):
    c, srv = api
    r = c.post("/jobs", json={"name": "x", "user": "alice", "resources": {"cpu": "1", "memory": "1Gi"}},
               headers=PLANNER)
    assert r.status_code == 403
    r = c.post("/jobs", json={"name": "x", "resources": {"cpu": "1", "memory": "1Gi"}, "scheduler": "nosuch"},
               headers=ALICE)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "scheduler"


def test_the_external_loop_rides_out_errors_it_is_told_to_pass_and_raises_the_others():
    calls = []

    def get(path):
        calls.append(path)
        if len(calls) <= 2:
            raise ConnectionError("the master is away")
        return {"pending": [], "in_allocs": [], "backoff_s": 0, "seq": 0, "mark": -1}

    slept = []
    ext = ExternalScheduler("batch", get, lambda p, b: {})
    counts = ext.run(0.1, slept.append, lambda: False, rounds=4, passing=lambda e: isinstance(e, ConnectionError))
    assert slept == [0.2, 0.4, 0.1, 0.1] and counts.rounds == 2  # backed off twice, then back to its pace
    with pytest.raises(ConnectionError):
        ExternalScheduler("batch", lambda p: (_ for _ in ()).throw(ConnectionError("x")), lambda p, b: {}).run(
            0.1, slept.append, lambda: False, rounds=1)
