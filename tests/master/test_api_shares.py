"""GET /api/v1/shares: per user and group, dominant share, weight, running and pending."""

from __future__ import annotations

import time

import httpx
import pytest

from corral.master.auth import Tokens
from corral.master.server import MasterServer, build_master
from corral.sched.shares import ShareConfig
from tests.master.conftest import TOKENS, auth

MACHINE = {"name": "m1", "capacity": {"cpu": "8", "memory": "32Gi"}, "address": "http://127.0.0.1:7101"}


@pytest.fixture
def client(tmp_path):
    shares = ShareConfig.parse({"users": {"alice": 2}, "groups": {"research": {"weight": 3, "users": ["alice", "carol"]}}})
    master = build_master(f"sqlite:///{tmp_path}/state.db", validate=True, schedule_interval_s=0.05, shares=shares)
    srv = MasterServer(master, Tokens.parse(TOKENS)).start()
    try:
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=10.0) as c:
            yield c
    finally:
        srv.stop()


def _until(fetch, predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last: {value}"
        time.sleep(0.02)


def test_shares_show_dominant_share_weight_running_and_pending_per_user_and_group(client):
    client.post("/machines", json=MACHINE, headers=auth("t-ops")).raise_for_status()
    # alice: 2 tasks of 2 CPUs fit (4 of 8 CPUs), bob: 6 tasks of 4 GiB ask for 24 of 32 GiB.
    body = {"name": "a", "tasks": 2, "resources": {"cpu": "2", "memory": "1Gi"}}
    client.post("/jobs", json=body, headers=auth("t-alice")).raise_for_status()
    body = {"name": "b", "tasks": 6, "resources": {"cpu": "0.5", "memory": "4Gi"}}
    client.post("/jobs", json=body, headers=auth("t-bob")).raise_for_status()
    body = {"name": "big", "tasks": 1, "resources": {"cpu": "64", "memory": "1Gi"}}
    client.post("/jobs", json=body, headers=auth("t-bob")).raise_for_status()
    data = _until(lambda: client.get("/shares", headers=auth("t-bob")).json(),
                  lambda d: sum(u["running"] for u in d["users"]) == 8)
    assert data["order"] == "drf" and data["capacity"]["cpu"] == 8000
    users = {u["name"]: u for u in data["users"]}
    assert (users["alice"]["group"], users["alice"]["weight"]) == ("research", 2.0)
    assert users["alice"]["share"] == 0.5 and users["alice"]["dominant_share"] == 0.25
    assert users["alice"]["dominant_resource"] == "cpu"
    assert (users["bob"]["running"], users["bob"]["pending"], users["bob"]["dominant_resource"]) == (6, 1, "memory")
    assert users["bob"]["share"] == 0.75 and users["bob"]["group"] is None
    assert users["carol"]["running"] == 0 and users["carol"]["dominant_share"] == 0.0
    [research] = data["groups"]
    assert (research["name"], research["weight"], research["running"]) == ("research", 3.0, 2)
    assert research["dominant_share"] == pytest.approx(0.5 / 3, abs=1e-6)


def test_machines_show_limit_reservation_and_usage(client):
    client.post("/machines", json=MACHINE, headers=auth("t-ops")).raise_for_status()
    body = {"name": "a", "tasks": 2, "resources": {"cpu": "2", "memory": "1Gi"}}
    client.post("/jobs", json=body, headers=auth("t-alice")).raise_for_status()
    [m] = _until(lambda: client.get("/machines", headers=auth("t-bob")).json()["machines"], lambda ms: ms[0]["tasks"] == 2)
    # No agent reported usage yet: reserved at the limit.
    assert m["limit"] == m["reservation"] == {"cpu": 4000, "memory": 2 * 2**30}
    assert m["usage"] == {"cpu": 0, "memory": 0}
    assert client.get("/machines/m1", headers=auth("t-bob")).json()["reservation"]["cpu"] == 4000


def test_shares_need_a_token(client):
    assert client.get("/shares").status_code == 401
