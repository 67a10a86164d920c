"""``GET /api/v1/names/JOB`` (once and ``watch=true``) and DNS from a served master, over real sockets."""

from __future__ import annotations

import json
import threading

import dns.resolver
import httpx
import pytest

from corral.master.auth import Tokens
from corral.master.commands import MachineDown
from corral.master.server import MasterServer, build_master

from tests.master.conftest import TOKENS, auth

ALICE, AGENT = auth("t-alice"), auth("t-agent")
JOB = {"name": "web", "user": "alice", "tasks": 1,
       "resources": {"cpu": "1", "memory": "1Gi", "ports": {"http": 0}}}


def machine(name: str, ip: str) -> dict:
    return {"name": name, "address": f"http://{ip}:7101", "capacity": {"cpu": 8000, "memory": 2**34, "disk": 0, "gpu": 0},
            "gpu_model": "", "attributes": {}, "isolation": "rlimit"}


@pytest.fixture
def served(tmp_path):
    master = build_master(f"sqlite:///{tmp_path}/state.db", validate=True, schedule_interval_s=0.05)
    srv = MasterServer(master, Tokens.parse(TOKENS), dns=("127.0.0.1", 0), dns_ttl_s=2).start()
    try:
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=10.0) as c:
            yield srv, c
    finally:
        srv.stop()


def test_names_once_and_bad_input(served):
    srv, c = served
    assert c.post("/agents/register", json=machine("m1", "127.0.0.2"), headers=AGENT).status_code == 200
    assert c.post("/jobs", json=JOB, headers=ALICE).status_code == 201
    reply = None
    for _ in range(100):
        reply = c.get("/names/web", headers=ALICE).json()
        if reply["endpoints"]:
            break
        threading.Event().wait(0.05)
    assert reply["name"] == "web.alice.local" and reply["job"] == "web.alice"
    (e,) = reply["endpoints"]
    assert e["task"] == "0.web.alice.local" and e["address"] == "127.0.0.2" and e["machine"] == "m1"
    assert 31000 <= e["ports"]["http"] < 32768
    missing = c.get("/names/nope", headers=ALICE)
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "job"
    bad = c.get("/names/a.b.c", headers=ALICE)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "job"
    assert c.get("/names/web?timeout_s=-1", headers=ALICE).status_code in (400, 422)
    assert c.get("/names/web").status_code == 401


def test_a_watch_follows_the_task_across_a_machine_loss_and_ends_when_the_job_ends(served):
    srv, c = served
    c.post("/agents/register", json=machine("m1", "127.0.0.2"), headers=AGENT)
    c.post("/jobs", json=JOB, headers=ALICE)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime, resolver.cache = ["127.0.0.1"], srv.names.port, 3.0, None
    seen: list[dict] = []
    with c.stream("GET", "/names/web?watch=true&timeout_s=20", headers=ALICE) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("application/x-ndjson")
        lines = stream.iter_lines()
        for line in lines:
            seen.append(json.loads(line))
            if seen[-1]["endpoints"]:
                break
        assert seen[-1]["endpoints"][0]["machine"] == "m1"
        assert {r.address for r in resolver.resolve("0.web.alice.local", "A")} == {"127.0.0.2"}
        _, done = srv.master.submit_command(MachineDown("m1", note="lost power"))
        done.result(10)
        # A watch reports what it sees every 50 ms (level-triggered), so the gap is
        # observed while the lost task has nowhere to go; then a machine joins.
        for line in lines:
            seen.append(json.loads(line))
            if not seen[-1]["endpoints"]:
                break
        assert seen[-1]["endpoints"] == [], "the lost task should have left the names"
        c.post("/agents/register", json=machine("m2", "127.0.0.3"), headers=AGENT)
        for line in lines:
            seen.append(json.loads(line))
            if seen[-1]["endpoints"] and seen[-1]["endpoints"][0]["machine"] == "m2":
                break
        assert {r.address for r in resolver.resolve("0.web.alice.local", "A")} == {"127.0.0.3"}
        assert c.delete("/jobs/web", headers=ALICE).status_code == 200
        rest = [json.loads(line) for line in lines]  # the stream ends once the job has ended
    assert rest[-1]["state"] == "killed" and rest[-1]["endpoints"] == []
