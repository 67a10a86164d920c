"""A master served over real HTTP on 127.0.0.1 (uvicorn in a thread), stopped after each test."""

from __future__ import annotations

import httpx
import pytest

from corral.master.auth import Tokens
from corral.master.quota import Quotas
from corral.master.server import MasterServer, build_master

TOKENS = {
    "t-alice": {"user": "alice", "role": "user"},
    "t-bob": {"user": "bob", "role": "user"},
    "t-ops": {"user": "ops", "role": "admin"},
    "t-agent": {"user": "agents", "role": "agent", "machine": "*"},
    "t-m1": {"user": "agent-m1", "role": "agent", "machine": "m1"},
    "t-m2": {"user": "agent-m2", "role": "agent", "machine": "m2"},
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server(tmp_path):
    master = build_master(f"sqlite:///{tmp_path}/state.db", validate=True, schedule_interval_s=0.05)
    master.core.quotas = Quotas.parse({"alice": {"batch": {"cpu": 64, "memory": "256Gi"},
                                                 "production": {"cpu": 8, "memory": "32Gi"}},
                                       "bob": {"batch": {"cpu": 64, "memory": "256Gi"}}})
    srv = MasterServer(master, Tokens.parse(TOKENS)).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url + "/api/v1", timeout=10.0) as c:
        yield c
