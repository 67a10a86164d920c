"""Latency of the live local cell, measured the way Slurm and Ray were measured.

The script starts its own local cell the way ``corral up`` does (``corral.cli.up.LocalCell``: a
master process with its SQLite store and one agent process, all on 127.0.0.1 in a temporary
directory), submits through the master's HTTP API with httpx as ``corral submit`` does, and stops
and removes everything when it ends, also on Ctrl-C or SIGTERM. The agent has ``slots`` slots:
its capacity is ``slots`` CPUs and every task asks for one.

* ``slots16`` / ``slots2``: 100 one-task jobs of ``sleep 0.5``, one submitted every 0.1 s. A
  task's first action writes the wall-clock time into a file; its latency is that time minus the
  time its submit call began. For 2 slots the zero-overhead FIFO ideal is computed from the
  actual submit times (a job starts at max(its submit, the earliest time a slot frees) and holds
  the slot 0.5 s).
* ``burst500``: 500 one-task jobs of ``true`` submitted back to back (one keep-alive
  connection), 16 slots; ``all_done_s`` runs from the first submit until the API shows every task
  ended.
* ``cli_call_s``: wall time of ``python3 -m corral.cli.main jobs`` (the console entry, pointed at
  the cell by its CLI config), about 20 calls (after one that writes the bytecode, as an install
  has it), on the 16-slot cell holding the 100 jobs above.

    python bench/local_cell.py --json

prints one JSON line: ``{"slots16": {"p50_s", "p99_s"}, "slots2": {"p50_s", "p99_s",
"ideal_p50_s", "ideal_p99_s"}, "burst500": {"all_done_s"}, "cli_call_s": {"p50", "p99"}, ...}``.
``--quick`` runs fewer jobs (a smoke test). Every phase also counts the jobs it saw end
(``jobs_done`` / ``jobs``): a figure is only worth reading when they match.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's corral, whatever is installed

from corral.cli.up import LocalCell  # noqa: E402

TASK_S = 0.5
ENDED = ("succeeded", "failed", "killed", "dead")
LIVE = ("pending", "starting", "running", "restarting")  # the task words of a task not ended yet


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 4) if values else float("nan")


def fifo_ideal(submits: list[float], slots: int, run_s: float) -> list[float]:
    """Latencies of a zero-overhead FIFO cell of ``slots`` slots: each job starts at max(its submit,
    the earliest time a slot frees) and holds it ``run_s``."""
    free = [0.0] * slots
    out = []
    for t in sorted(submits):
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + run_s)
        out.append(start - t)
    return out


class Bench:
    """One cell of ``slots`` slots and the calls the phases make."""

    def __init__(self, workdir: Path, slots: int, poll_interval_s: float, echo):
        self.workdir, self.slots, self.echo = workdir, slots, echo
        self.cell = LocalCell(workdir / f"cell{slots}", agents=1, port=0, poll_interval_s=poll_interval_s,
                              capacity=f"cpu={slots},memory={max(4, slots)}Gi", kill_grace_s=1.0,
                              echo=lambda *a: None)
        self.marks = workdir / f"marks{slots}"
        self.marks.mkdir(parents=True, exist_ok=True)
        # Under a root agent tasks run as unprivileged uids: they must reach and write the marks.
        workdir.chmod(0o755)
        self.marks.chmod(0o1777)
        self.client: httpx.Client | None = None
        self.tag = uuid.uuid4().hex[:6]

    def start(self) -> "Bench":
        t0 = time.monotonic()
        self.cell.start(timeout_s=60.0)
        self.client = httpx.Client(base_url=self.cell.url + "/api/v1", timeout=30.0,
                                   headers={"Authorization": f"Bearer {self.cell.admin_token}"})
        self.config = self.workdir / f"config{self.slots}.yaml"
        # As `corral up` writes it (corral.cli.config.write_config: YAML in JSON's form, which the
        # CLI reads with the json module; any other form would load PyYAML into every call timed).
        self.config.write_text(json.dumps({"addr": self.cell.url, "token": self.cell.admin_token}, indent=2) + "\n")
        self.echo(f"cell of {self.slots} slots up in {time.monotonic() - t0:.1f}s at {self.cell.url}")
        return self

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.cell.stop()

    def submit(self, name: str, command: str, args: list[str]) -> float:
        """Submit a one-task job as ``corral submit`` does; return when the call began (wall clock)."""
        spec = {"name": name, "tasks": 1, "priority": 4, "appclass": "batch", "command": command, "args": args,
                "resources": {"cpu": 1, "memory": "16Mi"}}
        began = time.time()
        r = self.client.post("/jobs", json=spec, headers={"X-Request-Id": uuid.uuid4().hex})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"submit {name}: HTTP {r.status_code} {r.text[:300]}")
        return began

    def cell_tasks(self) -> dict[str, int]:
        return self.client.get("/cell").json()["tasks"]

    def wait_ended(self, names: list[str], timeout_s: float, every_s: float = 0.05) -> tuple[float, int]:
        """Wait until every task in the cell has ended (``/cell`` counts); return (when, jobs of
        ``names`` that succeeded, from ``/jobs``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            tasks = self.cell_tasks()
            if not any(tasks.get(word, 0) for word in LIVE):
                break
            time.sleep(every_s)
        ended_at = time.time()
        jobs = {j["name"]: j["state"] for j in self.client.get("/jobs", params={"limit": 100_000}).json()["jobs"]}
        return ended_at, sum(1 for n in names if jobs.get(n) in ("succeeded", "dead"))

    # ---- phases ----------------------------------------------------------------------------------

    def latency(self, jobs: int, every_s: float) -> dict[str, Any]:
        """``jobs`` one-task jobs of ``sleep 0.5``, one every ``every_s``; latency = the task's first
        action minus the submit's start."""
        names, submits = [], {}
        t0 = time.monotonic()
        for i in range(jobs):
            name = f"lat{self.slots}-{self.tag}-{i}"
            mark = self.marks / name
            delay = t0 + i * every_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            submits[name] = self.submit(name, "sh", ["-c", f"date +%s.%N > {mark}; sleep {TASK_S}"])
            names.append(name)
        _, done = self.wait_ended(names, timeout_s=60.0 + jobs * TASK_S / self.slots * 4)
        latencies = []
        for name in names:
            try:
                latencies.append(float((self.marks / name).read_text().strip()) - submits[name])
            except (OSError, ValueError):
                pass
        out = {"p50_s": percentile(latencies, 50), "p99_s": percentile(latencies, 99),
               "max_s": percentile(latencies, 100), "jobs": jobs, "jobs_done": done, "started": len(latencies),
               "submit_every_s": every_s}
        if self.slots < 16:
            ideal = fifo_ideal(list(submits.values()), self.slots, TASK_S)
            out.update(ideal_p50_s=percentile(ideal, 50), ideal_p99_s=percentile(ideal, 99))
        return out

    def burst(self, jobs: int) -> dict[str, Any]:
        """``jobs`` one-task jobs of ``true`` back to back; the time until all have ended."""
        names = [f"burst-{self.tag}-{i}" for i in range(jobs)]
        first = None
        for name in names:
            began = self.submit(name, "true", [])
            first = first if first is not None else began
        submitted = time.time()
        ended_at, done = self.wait_ended(names, timeout_s=120.0 + jobs * 0.5)
        return {"all_done_s": round(ended_at - first, 3), "submit_s": round(submitted - first, 3),
                "jobs": jobs, "jobs_done": done}

    def cli_calls(self, calls: int) -> dict[str, Any]:
        rest = os.environ.get("PYTHONPATH")
        # Bytecode as an installed corral has it (pip compiles it): written once, by a first call not
        # counted, under the bench's own directory (the checkout stays clean), even where the
        # caller runs with PYTHONDONTWRITEBYTECODE (which would make every call compile corral anew).
        env = {**os.environ, "CORRAL_CONFIG": str(self.config),
               "PYTHONPATH": str(ROOT) + (os.pathsep + rest if rest else ""),
               "PYTHONPYCACHEPREFIX": str(self.workdir / "pycache")}
        for key in ("CORRAL_ADDR", "CORRAL_TOKEN", "PYTHONDONTWRITEBYTECODE"):
            env.pop(key, None)
        times = []
        for call in range(calls + 1):
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "corral.cli.main", "jobs"], env=env, capture_output=True,
                                  timeout=60)
            if call:
                times.append(time.perf_counter() - began)
            if done.returncode != 0:
                raise RuntimeError(f"corral jobs exited {done.returncode}: {done.stderr.decode()[-500:]}")
        return {"p50": percentile(times, 50), "p99": percentile(times, 99), "calls": calls,
                "jobs_listed": max(0, len(done.stdout.decode().splitlines()) - 1)}


def run(args: argparse.Namespace, echo) -> dict[str, Any]:
    n_lat, n_burst, n_cli = (10, 30, 3) if args.quick else (args.jobs, args.burst, args.cli_calls)
    out: dict[str, Any] = {"poll_interval_s": args.poll_interval, "task_s": TASK_S, "quick": args.quick}
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-cell-"))
    benches: list[Bench] = []
    try:
        b16 = Bench(workdir, 16, args.poll_interval, echo)
        benches.append(b16)
        b16.start()
        out["slots16"] = b16.latency(n_lat, args.every)
        echo(f"slots16: {out['slots16']}")
        out["cli_call_s"] = b16.cli_calls(n_cli)
        echo(f"cli_call_s: {out['cli_call_s']}")
        out["burst500"] = b16.burst(n_burst)
        echo(f"burst500: {out['burst500']}")
        b16.stop()
        benches.remove(b16)
        b2 = Bench(workdir, 2, args.poll_interval, echo)
        benches.append(b2)
        b2.start()
        out["slots2"] = b2.latency(n_lat, args.every)
        echo(f"slots2: {out['slots2']}")
    finally:
        for bench in benches:
            try:
                bench.stop()
            except Exception as e:  # go on cleaning up the rest
                echo(f"stopping the cell of {bench.slots} slots: {e!r}")
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="the master's poll interval (corral up's "
                                                                         "default: 1 s)")
    parser.add_argument("--quick", action="store_true", help="10 latency jobs, a burst of 30, 3 CLI calls")
    parser.add_argument("--jobs", type=int, default=100, help="latency jobs per slot count")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between latency submissions")
    parser.add_argument("--burst", type=int, default=500, help="jobs of the burst")
    parser.add_argument("--cli-calls", type=int, default=20)
    args = parser.parse_args(argv)
    echo = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))

    def _term(signum, frame):  # SIGTERM cleans up as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where the shell started us ignoring it
    try:
        out = run(args, echo)
    except KeyboardInterrupt:
        print("interrupted; the cell was stopped", file=sys.stderr)
        return 130
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
