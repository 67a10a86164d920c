"""Machine queues with a real master and agent on 127.0.0.1: a queued task starts when the running one
ends, on the agent, without waiting for a scheduling round (the events' times say so)."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from corral.cli.up import ensure_cell_tokens
from tests.e2e.conftest import wait_until
from tests.e2e.test_agent_restart import AgentProcess
from tests.master.procs import MasterProcess

pytestmark = pytest.mark.slow


def test_a_queued_task_starts_the_moment_the_running_one_ends(tmp_path: Path):
    admin, tokens = ensure_cell_tokens(tmp_path / "tokens.yaml", "tester", ["m1"])
    # Polls every 5 s: a start that came through a poll and a round would come seconds late.
    master = MasterProcess(f"sqlite:///{tmp_path / 'state.db'}", tmp_path / "tokens.yaml", tmp_path,
                           ["--poll-interval", "5", "--machine-queues"]).start()
    agent = AgentProcess(tmp_path, "m1", master.url, tokens["m1"])

    def api(method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, master.url + "/api/v1" + path, headers={"Authorization": f"Bearer {admin}"},
                             timeout=10.0, **kw)

    try:
        agent.start()
        wait_until(lambda: any(m["state"] == "up" for m in api("GET", "/machines").json()["machines"]), 20,
                   "the agent to register")
        tag = str(random.randint(100, 999))
        first = {"name": "first", "command": "sh", "args": ["-c", f"sleep 2.{tag}"],
                 "resources": {"cpu": "4", "memory": "64Mi"}}
        assert api("POST", "/jobs", json=first).status_code == 201
        wait_until(lambda: api("GET", "/jobs/first/tasks").json()["tasks"][0]["state"] == "running", 20,
                   "the first task to run")
        second = {**first, "name": "second", "args": ["-c", "sleep 0.2"]}
        assert api("POST", "/jobs", json=second).status_code == 201
        reason = wait_until(lambda: (lambda t: t["state"] == "pending" and t.get("reason", "").startswith("queued on m1")
                                     and t["reason"])(api("GET", "/jobs/second/tasks").json()["tasks"][0]),
                            20, "the second task to be queued on m1")
        assert "expected start in" in reason
        wait_until(lambda: api("GET", "/jobs/second").json()["state"] == "succeeded", 30, "the second job to succeed")
        events = api("GET", "/events").json()["events"]
        ended = next(e for e in events if e["type"] == "task_ended" and e["task"].startswith("0.first."))
        queued = next(e for e in events if e["type"] == "task_queued" and e["task"].startswith("0.second."))
        started = next(e for e in events if e["type"] == "task_scheduled" and e["task"].startswith("0.second."))
        t = {k: datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
             for k, e in (("ended", ended), ("queued", queued), ("started", started))}
        assert queued["machine"] == started["machine"] == "m1" and t["queued"] < t["ended"]
        # the agent started it from its queue and said so with the end that made room: well inside a
        # poll interval (5 s), and from that report, not from a round's plan
        assert 0 <= t["started"] - t["ended"] < 1.0, (ended, started)
        assert started["cmd"] == ended["cmd"], (ended, started)  # one report of the agent said both
    finally:
        agent.stop()
        master.kill()
