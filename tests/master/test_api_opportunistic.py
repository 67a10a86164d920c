"""Opportunistic tasks through real HTTP: a job over its user's quota runs, its extra tasks marked,
and they become regular in place once the quota frees."""

from __future__ import annotations

import httpx
import pytest

from corral.master.auth import Tokens
from corral.master.quota import Quotas
from corral.master.server import MasterServer, build_master
from tests.master.conftest import TOKENS, auth
from tests.master.test_api import AGENT_BODY, agent_reported, wait_for

ALICE, OPS = auth("t-alice"), auth("t-ops")


@pytest.fixture
def client(tmp_path):
    master = build_master(f"sqlite:///{tmp_path}/state.db", validate=True, schedule_interval_s=0.05)
    master.core.quotas = Quotas.parse({"alice": {"batch": {"cpu": 2, "memory": "64Gi"}}})
    srv = MasterServer(master, Tokens.parse(TOKENS)).start()
    try:
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=10.0) as c:
            c.server = srv  # type: ignore[attr-defined]
            yield c
    finally:
        srv.stop()


def job(name, tasks, **fields):
    return {"name": name, "tasks": tasks, "resources": {"cpu": "1", "memory": "1Gi"}, **fields}


def test_a_job_over_quota_with_opportunistic_runs_its_extra_tasks_marked_and_upgrades_them_in_place(client):
    client.post("/machines", json=AGENT_BODY, headers=OPS).raise_for_status()  # 8 cpu
    refused = client.post("/jobs", json=job("plain", 4), headers=ALICE)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "quota.batch.cpu"
    bad = client.post("/jobs", json=job("bad", 4, opportunistic="some"), headers=ALICE)
    assert bad.status_code == 400 and [e["field"] for e in bad.json()["errors"]] == ["opportunistic"]

    r = client.post("/jobs", json=job("batch", 4, opportunistic=True), headers=ALICE)
    assert r.status_code == 201, r.text
    tasks = wait_for(lambda: client.get("/tasks", params={"job": "batch"}, headers=ALICE).json()["tasks"],
                     lambda ts: len(ts) == 4 and all(t["machine"] == "m1" for t in ts))
    for t in tasks:
        agent_reported(client.server, t["name"])
    tasks = sorted(client.get("/tasks", params={"job": "batch"}, headers=ALICE).json()["tasks"],
                   key=lambda t: t["index"])
    assert [t["state"] for t in tasks] == ["running"] * 4
    assert [t["opportunistic"] for t in tasks] == [False, False, True, True]
    detail = client.get("/jobs/batch", headers=ALICE).json()
    assert detail["opportunistic"] == 2 and detail["spec"]["opportunistic"] is True
    why = client.get("/tasks/batch.alice/3/why", headers=ALICE).json()
    assert why["opportunistic"] is True and "opportunistic" in why["summary"]
    client.post("/jobs", json=job("other", 1, opportunistic=True), headers=ALICE).raise_for_status()
    other = wait_for(lambda: client.get("/tasks/other.alice/0", headers=ALICE).json(), lambda t: t["machine"])
    assert other["opportunistic"] is True
    client.post("/jobs/batch/kill", headers=ALICE).raise_for_status()  # 2 cpu of quota free
    upgraded = wait_for(lambda: client.get("/tasks/other.alice/0", headers=ALICE).json(),
                        lambda t: not t["opportunistic"])
    assert (upgraded["machine"], upgraded["generation"]) == (other["machine"], other["generation"])  # no restart
    vias = [e["via"] for e in client.get("/jobs/other/events", headers=ALICE).json()["events"]
            if e["object"] == "0.other.alice.local"]
    assert vias == ["submit", "schedule", "upgrade"]
