"""Concurrency: many clients submit, update, kill and re-register machines through HTTP while
the scheduler thread plans and commits. No answer is a 500, the invariants hold after every
command (validate mode), and the log rebuilds exactly the live state."""

from __future__ import annotations

import random
import threading
import time

import httpx

from corral.master.auth import Tokens
from corral.master.core import MasterCore
from corral.master.server import MasterServer, build_master

TOKENS = {"t-ops": {"user": "ops", "role": "admin"}}


def test_concurrent_clients_and_the_scheduler_keep_state_and_log_equal(tmp_path):
    master = build_master(f"sqlite:///{tmp_path}/s.db", validate=True, schedule_interval_s=0.02, min_round_gap_s=0.0)
    server = MasterServer(master, Tokens.parse(TOKENS)).start()
    failures: list[str] = []
    stop = time.monotonic() + 2.5

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": "Bearer t-ops"},
                          timeout=10) as c:
            while time.monotonic() < stop:
                job = f"j{rng.randrange(12)}"
                user = rng.choice(["alice", "bob"])
                spec = {"name": job, "user": user, "tasks": rng.randint(1, 4), "priority": rng.choice([0, 2, 5, 9]),
                        "resources": {"cpu": rng.choice(["500m", "1", "2"]), "memory": "1Gi"}}
                action = rng.random()
                if action < 0.4:
                    r = c.post("/jobs", json=spec, headers={"X-Request-Id": f"{seed}-{rng.randrange(50)}"})
                elif action < 0.6:
                    r = c.put(f"/jobs/{job}.{user}", json=spec, params={"max_unavailable": rng.randint(1, 2)})
                elif action < 0.75:
                    r = c.post(f"/jobs/{job}.{user}/kill")
                elif action < 0.85:
                    r = c.post("/machines", json={"name": f"m{rng.randrange(4)}", "attributes": {"rack": "r1"},
                                                  "capacity": {"cpu": rng.choice(["4", "8"]), "memory": "16Gi"}})
                else:
                    r = c.get("/tasks", params={"state": "pending"})
                if r.status_code >= 500:
                    failures.append(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:300]}")

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    stopped = False
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not failures, failures[:3]
        # No more rounds, and no final checkpoint (it would compact the log away): the log alone
        # must rebuild the state the master ended with.
        server.stop(checkpoint=False)
        stopped = True
        live = master.core.state.to_dict()
        log = _log_only(tmp_path)
        try:
            rebuilt = MasterCore.rebuild(log)
        finally:
            log.close()
        assert rebuilt.to_dict() == live
        rebuilt.validate()
        assert live["seq"] > 50 and any(t["state"] == "running" for t in live["tasks"].values())
    finally:
        if not stopped:
            server.stop()


def _log_only(tmp_path):
    """The store's log without its checkpoints: replay from the very first event."""
    from corral.store.sqlite import SqliteStore

    class LogOnly(SqliteStore):
        def latest_checkpoint(self):
            return None

    return LogOnly(tmp_path / "s.db")
