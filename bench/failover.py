"""Failover of the replicated master: kill -9 the leader again and again while submissions stream.

A local replicated cell (``corral up --replicas 3``'s: a 3-member etcd cluster,
three masters, agents) runs a steady job whose tasks must survive every
failover. A client thread streams submissions, each with its own request id,
through the CLI's client (every master's address, redirects followed, retried
idempotently). Each trial kills -9 the leader, measures kill → the next
acknowledged submission, and starts the killed master again as a follower.

    python bench/failover.py --json

prints one JSON line: ``trials``, ``failover_p50_s``, ``failover_max_s``,
``acknowledged``, ``acknowledged_lost`` (acknowledged jobs missing at the end),
``duplicate_jobs`` (a submission that made more than one job, or whose retry
found its own job already there without being told it was a duplicate),
``tasks_restarted`` (the steady job's running tasks restarted by a failover).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's corral, whatever is installed

from corral.client.errors import ApiError  # noqa: E402
from corral.client.transport import Transport  # noqa: E402
from corral.cli.up_replicated import ReplicatedCell  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Stream:
    """Submissions one after another, each acknowledged (or given up on) before the next."""

    def __init__(self, cell: ReplicatedCell):
        self.client = Transport(cell.url, cell.admin_token, timeout_s=10.0, failover_s=30.0)
        self.acks: list[tuple[float, str]] = []  # (when, job id)
        self.conflicts = 0  # a retry refused as a second job of the same name: a duplicate not recognised
        self.given_up = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        # Pending forever (no machine matches): the stream costs the master, not the agents.
        while not self.stop.is_set():
            name = "s" + uuid.uuid4().hex[:12]
            spec = {"name": name, "tasks": 1, "resources": {"cpu": "10m", "memory": "1Mi"},
                    "constraints": ["rack == nowhere"]}
            try:
                reply = self.client.call("POST", "/jobs", json=spec, headers={"X-Request-Id": name}, retries=5)
                self.acks.append((time.monotonic(), reply["job"]))
            except ApiError as e:
                if e.status == 409:
                    self.conflicts += 1
                else:
                    self.given_up += 1
            time.sleep(0.01)


def leader(cell: ReplicatedCell, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        leaders = [m for m in cell.masters_now() if m["role"] == "leader"]
        if len(leaders) == 1:
            return leaders[0]
        time.sleep(0.05)
    raise SystemExit(f"no leader within {timeout_s} s")


def steady_pids(cell: ReplicatedCell) -> dict[str, int]:
    pids = {}
    for name in cell.names:
        address = cell.machines_address[name]
        r = httpx.get(address + "/v1/state", headers={"Authorization": f"Bearer {cell.agent_tokens[name]}"},
                      timeout=5.0)
        for task in r.json()["tasks"]:
            if task.get("state") == "running" and ".steady." in task["name"]:
                pids[task["name"]] = task["pid"]
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--steady-tasks", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    def _term(signum, frame):  # SIGTERM stops the cell as Ctrl-C does (its tasks outlive their agents)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    with tempfile.TemporaryDirectory(prefix="corral-bench-cell-") as tmp:
        cell = ReplicatedCell(Path(tmp), replicas=3, agents=args.agents, port=0, poll_interval_s=0.5,
                              capacity="cpu=4,memory=4Gi", echo=say)
        stream = None
        try:
            cell.start(timeout_s=60.0)
            cell.machines_address = {m["name"]: m["address"] for m in cell.machines_up()}
            cell.api("POST", "/jobs", json={"name": "steady", "tasks": args.steady_tasks, "command": "sh",
                                            "args": ["-c", "exec sleep 3600"],
                                            "resources": {"cpu": "100m", "memory": "16Mi"}})
            deadline = time.monotonic() + 60
            while len(before := steady_pids(cell)) < args.steady_tasks:
                if time.monotonic() > deadline:
                    raise SystemExit("the steady job did not start")
                time.sleep(0.2)
            stream = Stream(cell)
            stream.thread.start()
            failovers = []
            for trial in range(args.trials):
                old = leader(cell)
                while not stream.acks or stream.acks[-1][0] < time.monotonic() - 0.5:
                    time.sleep(0.02)  # the stream flows before the kill
                killed_at = time.monotonic()
                os.kill(old["pid"], signal.SIGKILL)
                while not any(t > killed_at for t, _ in stream.acks[-50:]):
                    if time.monotonic() - killed_at > 30:
                        raise SystemExit(f"trial {trial}: no submission acknowledged 30 s after the kill")
                    time.sleep(0.005)
                failovers.append(next(t for t, _ in stream.acks[-50:] if t > killed_at) - killed_at)
                say(f"trial {trial}: failover {failovers[-1]:.3f} s")
                why = cell.supervise()  # the killed master starts again, as a follower
                if why:
                    raise SystemExit(why)
                back_by = time.monotonic() + 60
                while len([m for m in cell.masters_now() if m["role"] in ("leader", "follower")]) < 3:
                    if time.monotonic() > back_by:
                        raise SystemExit(f"trial {trial}: the killed master did not rejoin within 60 s")
                    time.sleep(0.1)
            stream.stop.set()
            stream.thread.join(60)
            jobs = [j["job"] for j in cell.api("GET", "/jobs", params={"limit": 100000})["jobs"]]
            after = steady_pids(cell)
        finally:
            if stream is not None:
                stream.stop.set()
                stream.client.close()
            cell.stop()
    acknowledged = [job for _, job in stream.acks]
    listed = set(jobs)
    result = {
        "trials": len(failovers),
        "failover_p50_s": round(percentile(failovers, 0.5), 3),
        "failover_max_s": round(max(failovers), 3),
        "acknowledged": len(acknowledged),
        "acknowledged_lost": sum(1 for job in acknowledged if job not in listed),
        "duplicate_jobs": (len(jobs) - len(listed)) + stream.conflicts,
        "tasks_restarted": sum(1 for task, pid in before.items() if after.get(task) != pid),
        "given_up": stream.given_up,
        "load_average_1m": os.getloadavg()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
