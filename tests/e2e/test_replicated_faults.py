"""Faults under a replicated master (real processes, bounded time): etcd members die and return;
every master dies for a minute while the agents keep their tasks running."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from corral.client.transport import Transport
from tests.e2e.test_replicated_master import ADMIN, AGENT, job, wait_leader
from tests.master.procs import MasterProcess


def submit(url: str) -> httpx.Response:
    return httpx.post(url + "/api/v1/jobs", json=job("j" + uuid.uuid4().hex[:8]),
                      headers={"Authorization": f"Bearer {ADMIN}"}, timeout=20.0)


@pytest.mark.slow
def test_one_etcd_member_down_writes_go_on_two_down_a_clear_503_and_writes_resume(own_etcd, tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({ADMIN: {"user": "ops", "role": "admin"},
                                      AGENT: {"user": "agents", "role": "agent", "machine": "*"}}))
    masters = []
    try:
        for i in range(2):
            (tmp_path / f"m{i}").mkdir()
            masters.append(MasterProcess(own_etcd.url, tokens, tmp_path / f"m{i}").start())
        leader = wait_leader(masters)
        acknowledged = [submit(leader).json()["job"]]
        own_etcd.kill_member("etcd0")
        r = submit(leader)
        assert r.status_code == 201, r.text  # a quorum of two remains
        acknowledged.append(r.json()["job"])
        own_etcd.kill_member("etcd1")
        started = time.monotonic()
        r = submit(leader)
        assert r.status_code == 503 and time.monotonic() - started < 15, r.text
        assert "not acknowledged" in r.text or "deposed" in r.text or "follower" in r.text, r.text
        own_etcd.start_member("etcd0")
        own_etcd.start_member("etcd1")
        client = Transport(",".join(m.url for m in masters), ADMIN, timeout_s=10.0, failover_s=30.0)
        try:
            rid = str(uuid.uuid4())
            acknowledged.append(client.call("POST", "/jobs", json=job("resumed"), headers={"X-Request-Id": rid},
                                            retries=5)["job"])
            jobs = {j["job"] for j in client.call("GET", "/jobs")["jobs"]}
        finally:
            client.close()
        assert set(acknowledged) <= jobs  # nothing acknowledged was lost
    finally:
        for m in masters:
            m.kill()


@pytest.mark.slow
def test_all_masters_down_for_a_minute_every_task_keeps_running_and_is_readopted(tmp_path):
    from tests.etcd import skip_without_etcd

    skip_without_etcd()
    from corral.cli.up_replicated import ReplicatedCell

    cell = ReplicatedCell(Path(tmp_path), replicas=3, agents=2, port=0, poll_interval_s=0.5,
                          capacity="cpu=4,memory=4Gi", echo=lambda *_: None)
    try:
        cell.start(timeout_s=60.0)
        addresses = {m["name"]: m["address"] for m in cell.machines_up()}
        cell.api("POST", "/jobs", json={"name": "steady", "tasks": 3, "command": "sh",
                                        "args": ["-c", "exec sleep 3600"],
                                        "resources": {"cpu": "100m", "memory": "16Mi"}})

        def running() -> dict[str, int]:
            pids = {}
            for name, address in addresses.items():
                state = httpx.get(address + "/v1/state", timeout=5.0,
                                  headers={"Authorization": f"Bearer {cell.agent_tokens[name]}"}).json()
                pids.update({t["name"]: t["pid"] for t in state["tasks"] if t.get("state") == "running"})
            return pids
        deadline = time.monotonic() + 30
        while len(before := running()) < 3:
            assert time.monotonic() < deadline, "the tasks did not start"
            time.sleep(0.2)
        for name in cell.masters:
            cell.procs[name].kill()
            cell.procs[name].wait(10)
        time.sleep(60)
        assert running() == before  # the agents kept every task without a master
        assert cell.supervise() is None  # all three masters start again
        deadline = time.monotonic() + 30
        while True:
            tasks = cell.api("GET", "/jobs/steady." + cell.user + "/tasks")["tasks"]
            if [t["state"] for t in tasks] == ["running"] * 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [t["state"] for t in tasks] == ["running"] * 3
        time.sleep(2.0)
        assert running() == before  # re-adopted, none restarted
    finally:
        cell.stop()
