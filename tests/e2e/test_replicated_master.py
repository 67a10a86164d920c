"""Three masters on one etcd cluster, as real processes: one leads, followers redirect writes and
serve stale reads only when asked, and a kill -9 of the leader loses no acknowledged submission."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import yaml

from corral.client.transport import Transport
from tests.master.procs import MasterProcess

ADMIN, AGENT = "t-admin", "t-agent"


def job(name: str) -> dict:
    return {"name": name, "tasks": 1, "resources": {"cpu": "1", "memory": "1Gi"}}


def roles(masters: list[MasterProcess]) -> dict[str, str]:
    found = {}
    for m in masters:
        if m.proc is None or m.proc.poll() is not None:
            continue
        try:
            found[m.url] = httpx.get(m.url + "/api/v1/master", headers={"Authorization": f"Bearer {ADMIN}"},
                                     timeout=2.0).json()["role"]
        except httpx.HTTPError:
            pass
    return found


def wait_leader(masters: list[MasterProcess], timeout_s: float = 15.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        leaders = [url for url, role in roles(masters).items() if role == "leader"]
        assert len(leaders) <= 1, f"two leaders: {leaders}"
        if leaders:
            return leaders[0]
        time.sleep(0.05)
    raise AssertionError(f"no leader within {timeout_s} s: {roles(masters)}")


@pytest.fixture
def cell(etcd_url, tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({ADMIN: {"user": "ops", "role": "admin"},
                                      AGENT: {"user": "agents", "role": "agent", "machine": "*"}}))
    masters = []
    try:
        for i in range(3):
            (tmp_path / f"m{i}").mkdir()
            masters.append(MasterProcess(etcd_url, tokens, tmp_path / f"m{i}").start())
        yield masters
    finally:
        for m in masters:
            m.kill()


def test_followers_redirect_writes_serve_stale_reads_only_when_asked_and_a_killed_leader_loses_nothing(cell):
    leader = wait_leader(cell)
    follower = next(m.url for m in cell if m.url != leader)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.post(follower + "/api/v1/jobs", json=job("direct"), headers=auth)
    assert r.status_code == 307 and r.headers["location"] == leader + "/api/v1/jobs"
    assert httpx.get(follower + "/api/v1/jobs", headers=auth).status_code == 307

    client = Transport(",".join(m.url for m in cell), ADMIN, timeout_s=10.0)
    try:
        acknowledged = {}
        for i in range(5):
            rid = str(uuid.uuid4())
            acknowledged[rid] = client.call("POST", "/jobs", json=job(f"j{i}"), headers={"X-Request-Id": rid},
                                            retries=2)["job"]
        deadline = time.monotonic() + 10
        while True:  # the follower applies the log as it grows
            stale = httpx.get(follower + "/api/v1/jobs", params={"stale": "true"}, headers=auth)
            assert stale.status_code == 200 and stale.headers["x-corral-stale"] == "true"
            if stale.json()["count"] == 5 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert stale.json()["count"] == 5 and int(stale.headers["x-corral-applied"]) > 0

        killed = next(m for m in cell if m.url == leader)
        killed.kill()  # SIGKILL
        started = time.monotonic()
        rid = str(uuid.uuid4())
        acknowledged[rid] = client.call("POST", "/jobs", json=job("after"), headers={"X-Request-Id": rid},
                                        retries=2)["job"]
        failover_s = time.monotonic() - started
        new_leader = wait_leader(cell)
        assert new_leader != leader and failover_s < 10

        jobs = {j["job"] for j in client.call("GET", "/jobs")["jobs"]}
        assert set(acknowledged.values()) <= jobs, "an acknowledged submission was lost"
        again = client.call("POST", "/jobs", json=job("j0"), headers={"X-Request-Id": next(iter(acknowledged))},
                            retries=2)
        assert again["duplicate"] is True and len(jobs) == 6  # a retry after failover makes no second job

        stopped = next(m for m in cell if m.url == new_leader)
        stopped.stop()  # SIGTERM: a final (fenced) checkpoint, then it resigns
        assert stopped.proc.returncode == 0 and "failed" not in stopped.log.read_text()
        assert wait_leader(cell) not in (leader, new_leader)
        assert len({j["job"] for j in client.call("GET", "/jobs")["jobs"]}) == 6
    finally:
        client.close()
