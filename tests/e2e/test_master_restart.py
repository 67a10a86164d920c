"""The master killed with -9 and started again on its store: the agents keep running their tasks
through the outage, the new master's link finds them (and their tokens) again, nothing restarts."""

from __future__ import annotations

import signal
import time

import httpx

from corral.cli.up import LocalCell
from tests.e2e.conftest import alive, wait_until


def test_a_restarted_master_takes_over_the_running_tasks_without_restarting_them(tmp_path):
    cell = LocalCell(tmp_path / "cell", agents=2, port=0, poll_interval_s=0.3, capacity="cpu=4,memory=4Gi",
                     echo=lambda *_: None)
    seen: set[int] = set()
    try:
        cell.start()

        def running() -> dict[str, int]:
            out = {}
            for name in cell.names:
                address = next(m["address"] for m in cell.api("GET", "/machines")["machines"] if m["name"] == name)
                state = httpx.get(address + "/v1/state", timeout=5,
                                  headers={"Authorization": f"Bearer {cell.agent_tokens[name]}"}).json()
                out.update({t["task_id"]: t["pid"] for t in state["tasks"] if t["state"] == "running"})
            seen.update(out.values())
            return out

        cell.api("POST", "/jobs", json={"name": "steady", "tasks": 3, "command": "sh", "args": ["-c", "exec sleep 600"],
                                        "resources": {"cpu": "100m", "memory": "32Mi"}})
        before = wait_until(lambda: len(running()) == 3 and running(), 15, "3 running tasks")
        master = cell.procs["master"]
        master.send_signal(signal.SIGKILL)
        master.wait(10)
        time.sleep(1.0)  # the agents miss nothing: their tasks go on without a master
        assert all(alive(p) for p in before.values())
        cell.start_master()
        wait_until(lambda: len(cell.machines_up()) == 2, 10, "both machines up under the new master")
        cell.api("POST", "/jobs", json={"name": "after", "command": "sh", "args": ["-c", "exec sleep 600"],
                                        "resources": {"cpu": "100m", "memory": "32Mi"}})
        wait_until(lambda: len(running()) == 4, 15, "the new master to start a task through its link")
        time.sleep(4 * cell.poll_interval_s)  # several polls by the new master
        now = running()
        assert {k: v for k, v in now.items() if k in before} == before  # same processes: nothing restarted
        tasks = cell.api("GET", "/jobs/steady/tasks")["tasks"]
        assert [t["state"] for t in tasks] == ["running"] * 3
    finally:
        cell.stop()
    assert not [p for p in seen if alive(p)]
    assert all(p.poll() is not None for p in cell.procs.values())
