"""``corral up --replicas 3``: three masters on a local etcd cluster; kill -9 of the leader is a
failover that restarts no running task, and the killed master comes back as a follower."""

from __future__ import annotations

import json
import os
import signal
import time

import yaml

from tests.e2e.conftest import Cell, alive, wait_until
from tests.etcd import skip_without_etcd


class ReplicatedUp(Cell):
    def start(self, timeout_s: float = 60.0) -> "ReplicatedUp":
        self.extra = ["--replicas", "3", *self.extra]
        return super().start(timeout_s)

    def pids(self) -> list[int]:
        info = json.loads((self.dir / "cell.json").read_text()) if (self.dir / "cell.json").exists() else {}
        self.info = info or self.info
        return [*(m["pid"] for m in self.info.get("masters", {}).values()),
                *(a["pid"] for a in self.info.get("agents", {}).values())]

    def masters(self) -> list[dict]:
        r = self.corral("masters", "--output", "json")
        return json.loads(r.stdout)["masters"] if r.stdout.strip().startswith("{") else []

    def leader(self) -> dict | None:
        leaders = [m for m in self.masters() if m["role"] == "leader"]
        assert len(leaders) <= 1, leaders
        return leaders[0] if leaders else None


def test_up_replicas_fails_over_a_killed_leader_without_restarting_tasks_and_stops_cleanly(tmp_path):
    skip_without_etcd()
    cell = ReplicatedUp(tmp_path, agents=2)
    try:
        cell.start()
        cell.pids()
        config = yaml.safe_load((tmp_path / "config.yaml").read_text())
        assert len(config["addr"].split(",")) == 3
        leader = wait_until(cell.leader, 20, "a leader")
        rows = cell.masters()
        assert sorted(m["role"] for m in rows) == ["follower", "follower", "leader"]
        assert {m["pid"] for m in rows} == {m["pid"] for m in cell.info["masters"].values()}

        spec = cell.spec("sleepy", tasks=2, command="sh", args=["-c", "exec sleep 600"])
        assert cell.corral("submit", spec).returncode == 0
        job = "sleepy." + yaml.safe_load((cell.dir / "tokens.yaml").read_text())[config["token"]]["user"]

        def running_pids() -> set[int]:
            pids = set()
            for agent in cell.info["agents"]:
                pids |= {t["pid"] for t in cell.agent_state(agent)["tasks"] if t.get("state") == "running"}
            return pids
        before = wait_until(lambda: len(running_pids()) == 2 and running_pids(), 30, "two running tasks")

        os.kill(leader["pid"], signal.SIGKILL)
        new = wait_until(lambda: (cell.leader() or {}).get("url") not in (None, leader["url"]) and cell.leader(),
                         20, "a new leader")
        assert new["pid"] != leader["pid"]
        wait_until(lambda: len([m for m in cell.masters() if m["role"] in ("leader", "follower")]) == 3, 30,
                   "the killed master back as a follower")
        out = cell.corral("tasks", "--job", job, "--state", "running")
        assert out.returncode == 0 and out.stdout.count(" running ") == 2, out.stdout + out.stderr
        time.sleep(2.0)  # a few polls of the new leader: nothing is restarted
        assert running_pids() == before
        cell.proc.send_signal(signal.SIGTERM)
        cell.proc.wait(60)
    finally:
        cell.stop()
    assert cell.proc.returncode == 0, cell.out.read_text()[-2000:]
    assert not [pid for pid in cell.pids() if alive(pid)]
    assert not cell.leftovers(), cell.leftovers()
