"""Crash recovery: kill -9 the master process during a stream of submissions and restart it."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import yaml

from tests.master.procs import MasterProcess

ADMIN = {"Authorization": "Bearer t-ops"}
ALICE = {"Authorization": "Bearer t-alice"}


@pytest.fixture
def tokens(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({"t-ops": {"user": "ops", "role": "admin"}, "t-alice": {"user": "alice"}}))
    return path


def test_every_acknowledged_command_survives_kill_9_and_nothing_is_half_written(tmp_path, tokens):
    store = f"sqlite:///{tmp_path}/state.db"
    master = MasterProcess(store, tokens, tmp_path, ["--validate"]).start()
    acked: dict[str, str] = {}  # job -> "submitted" | "killed"
    lock = threading.Lock()
    stop = threading.Event()
    try:
        httpx.post(master.url + "/api/v1/machines", headers=ADMIN,
                   json={"name": "m1", "capacity": {"cpu": "64", "memory": "256Gi"}}).raise_for_status()

        def client(worker: int) -> None:
            with httpx.Client(base_url=master.url + "/api/v1", headers=ALICE, timeout=5.0) as c:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    name = f"j{worker}-{i}"
                    try:
                        r = c.post("/jobs", json={"name": name, "tasks": 1 + i % 3,
                                                  "resources": {"cpu": "100m", "memory": "64Mi"}})
                        if r.status_code == 201:
                            with lock:
                                acked[f"{name}.alice"] = "submitted"
                        if i % 4 == 3:
                            victim = f"j{worker}-{i - 1}"
                            if c.post(f"/jobs/{victim}/kill").status_code == 200:
                                with lock:
                                    acked[f"{victim}.alice"] = "killed"
                    except httpx.HTTPError:
                        return  # the master is gone

        threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        master.kill()  # SIGKILL, mid-stream
        stop.set()
        for t in threads:
            t.join(10)
        assert len(acked) >= 150

        master = MasterProcess(store, tokens, tmp_path, ["--validate"]).start()
        jobs = httpx.get(master.url + "/api/v1/jobs", params={"limit": 100_000}, headers=ALICE, timeout=10).json()["jobs"]
        by_id = {j["job"]: j for j in jobs}
        for jid, what in acked.items():
            assert jid in by_id, f"acknowledged job {jid} was lost"
            if what == "killed":
                assert by_id[jid]["state"] == "killed", jid
        for job in jobs:  # whole jobs only: every task of every job is there
            assert sum(n for word, n in job["task_states"].items() if word != "dead") == job["tasks"], job
        # The restarted master works on and keeps its invariants (--validate).
        assert httpx.post(master.url + "/api/v1/jobs", headers=ALICE, timeout=5,
                          json={"name": "after-crash", "resources": {"cpu": "1", "memory": "1Gi"}}).status_code == 201
    finally:
        stop.set()
        master.kill()
