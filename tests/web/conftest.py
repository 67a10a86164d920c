"""A master over real HTTP on 127.0.0.1 with two machines registered by an admin (no agents: tasks are
placed in the master's state only), for the UI's routes."""

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
    "t-agent": {"user": "agents", "role": "agent"},
}
EVIL = '<script>alert("x")</script>'


def api(srv: MasterServer, token: str = "t-ops") -> httpx.Client:
    return httpx.Client(base_url=srv.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10.0)


@pytest.fixture
def server(tmp_path):
    master = build_master(f"sqlite:///{tmp_path}/state.db", validate=True, schedule_interval_s=0.05)
    master.core.quotas = Quotas.parse({"alice": {"batch": {"cpu": 64, "memory": "256Gi"}}, "*": {}})
    srv = MasterServer(master, Tokens.parse(TOKENS)).start()
    with api(srv) as ops:
        for name, rack in (("m1", "r1"), ("m2", EVIL)):
            r = ops.post("/machines", json={"name": name, "capacity": {"cpu": "4", "memory": "8Gi"},
                                            "attributes": {"rack": rack}, "gpu_model": EVIL})
            assert r.status_code == 201, r.text
    try:
        yield srv
    finally:
        srv.stop()


def ui(srv: MasterServer, token: str | None = None) -> httpx.Client:
    """A browser-like client of /ui, signed in with ``token`` (cookie set by the login form)."""
    client = httpx.Client(base_url=srv.url, timeout=10.0, follow_redirects=False)
    if token is not None:
        r = client.post("/ui/login", data={"token": token, "next": "/ui/cell"})
        assert r.status_code == 303, r.text
    return client
