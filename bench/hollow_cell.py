"""One real master and N hollow agents: how far the live master's polling goes.

For each N of ``--agents`` (repeatable; default 250, 500, 1000, 2000) the script starts a real
master (``corral master`` as a child process, real HTTP, SQLite store, ``--poll-interval``) and N
hollow agents (``python -m corral.agent.hollow`` in ``--hosts`` helper processes: the agent's own
API and state code with tasks that only pretend to run, each agent on its own port), then:

1. waits until the API shows N machines up (``register_s``);
2. submits jobs of ``sleep 3600`` tasks until ``--tasks-per-agent`` (20) tasks per agent run (each agent has room for
   exactly 20): ``placed_per_s`` is the tasks over the time from the first submit until the API
   shows them all placed, ``started_per_s`` until the agents run them all;
3. measures a steady window of ``--window`` seconds: the achieved poll period as the agents see
   it (time between two polls of one agent: mean, p50, p99) against the configured one, the
   master's CPU seconds per poll (psutil on the master's pid over the window, divided by the
   polls the agents answered), the master's RSS, and the helpers' CPU (they share the machine);
4. kills one agent (its port stops accepting, its connections are reset) and times until the API
   shows its machine not up (``detect_s``, also in achieved periods).

    python bench/hollow_cell.py --agents 250 --agents 500 [--profile]

prints one JSON line per N. ``--profile`` samples every thread of the master (a small sampling
profiler inside the master process; no extra tools) and adds its hottest functions to the line.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
ADMIN, AGENT = "bench-admin-token", "bench-agent-token"
TASKS_PER_JOB = 100


def child_env() -> dict[str, str]:
    rest = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + rest if rest else ""), "PYTHONUNBUFFERED": "1"}
    for key in ("CORRAL_ADDR", "CORRAL_TOKEN", "CORRAL_AGENT_TOKEN"):
        env.pop(key, None)
    return env


# ---- a sampling profiler, run inside the master process -------------------------------------------


def _running_threads() -> set[int]:
    """Native ids of this process's threads the kernel has on a CPU or ready to run (state R)."""
    running = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "R":
                    running.add(int(tid))
        except (OSError, IndexError):
            pass
    return running


def _profiled_master(out: str, argv: list[str], every_s: float = 0.01) -> None:
    """Run ``corral master ARGV`` in this process while a thread samples the stacks of the threads
    that are running (not blocked on a socket, a lock or a queue: /proc says R); at exit write the
    hottest functions (self and cumulative, by samples) and threads to ``out``."""
    own: collections.Counter = collections.Counter()
    cumulative: collections.Counter = collections.Counter()
    by_thread: collections.Counter = collections.Counter()
    stop = threading.Event()
    me = threading.get_ident()
    samples = [0]

    def where(code) -> str:
        return f"{code.co_filename.rsplit('/', 2)[-1]}:{code.co_name}"

    def sample() -> None:
        while not stop.wait(every_s):
            samples[0] += 1
            threads = {t.ident: t for t in threading.enumerate()}
            running = _running_threads()
            for ident, frame in sys._current_frames().items():
                thread = threads.get(ident)
                if ident == me or thread is None or thread.native_id not in running:
                    continue
                own[where(frame.f_code)] += 1
                seen = set()
                f = frame
                while f is not None:
                    key = where(f.f_code)
                    if key not in seen:
                        cumulative[key] += 1
                        seen.add(key)
                    f = f.f_back
                by_thread[re.sub(r"[_-]\d+$", "", thread.name)] += 1

    threading.Thread(target=sample, name="bench-sampler", daemon=True).start()
    sys.argv = ["corral", *argv]
    try:
        from corral.cli.main import app

        app(standalone_mode=False)
    finally:
        stop.set()
        Path(out).write_text(json.dumps({"samples": samples[0], "every_s": every_s, "self": own.most_common(30),
                                         "cumulative": cumulative.most_common(50),
                                         "threads": by_thread.most_common(12)}))


# ---- the cell ------------------------------------------------------------------------------------


class HollowCell:
    def __init__(self, workdir: Path, agents: int, hosts: int, poll_interval_s: float, misses_to_down: int,
                 profile: bool, echo):
        self.dir, self.n, self.hosts_n = workdir, agents, hosts
        self.poll_interval_s, self.misses_to_down, self.profile, self.echo = poll_interval_s, misses_to_down, profile, echo
        self.tasks_per_agent = 20
        self.master: subprocess.Popen | None = None
        self.hosts: list[subprocess.Popen] = []
        self.url = ""
        self.client: httpx.Client | None = None
        self._logs: list[Any] = []

    def start_master(self) -> None:
        tokens = self.dir / "tokens.yaml"
        tokens.write_text(yaml.safe_dump({ADMIN: {"user": "bench", "role": "admin"},
                                          AGENT: {"user": "agents", "role": "agent", "machine": "*"}}))
        args = ["master", "--store", f"sqlite:///{self.dir}/state.db", "--port", "0", "--tokens", str(tokens),
                "--no-write-config", "--poll-interval", str(self.poll_interval_s),
                "--misses-to-down", str(self.misses_to_down)]
        if self.profile:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_profiled-master", str(self.dir / "profile.json"),
                   "--", *args]
        else:
            cmd = [sys.executable, "-m", "corral.cli.main", *args]
        log = open(self.dir / "master.log", "wb")
        self._logs.append(log)
        self.master = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=child_env(), cwd=self.dir, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.url:
            found = re.findall(r"serving (http://127\.0\.0\.1:\d+)", (self.dir / "master.log").read_text())
            if found:
                self.url = found[-1]
            elif self.master.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the master did not start:\n{(self.dir / 'master.log').read_text()[-2000:]}")
            time.sleep(0.05)
        self.client = httpx.Client(base_url=self.url + "/api/v1", headers={"Authorization": f"Bearer {ADMIN}"},
                                   timeout=60.0)

    def start_hosts(self) -> None:
        per = math.ceil(self.n / self.hosts_n)
        for h in range(self.hosts_n):
            first, count = h * per, min(per, self.n - h * per)
            if count <= 0:
                break
            err = open(self.dir / f"hollow{h}.log", "wb")
            self._logs.append(err)
            self.hosts.append(subprocess.Popen(
                [sys.executable, "-m", "corral.agent.hollow", "--master", self.url, "--token", AGENT,
                 "--agents", str(count), "--first", str(first), "--prefix", "h",
                 "--capacity", f"cpu={max(1, self.tasks_per_agent)},memory={max(1, self.tasks_per_agent) * 2}Gi,"
                               "disk=0,gpu=0"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=child_env(), cwd=self.dir, text=True,
                bufsize=1, start_new_session=True))
        for proc in self.hosts:
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError(f"a hollow host did not start: {line!r}; see {self.dir}")

    def ask(self, proc: subprocess.Popen, command: str) -> str:
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    def stats(self) -> list[dict[str, Any]]:
        return [json.loads(self.ask(p, "stats")) for p in self.hosts]

    def machines(self) -> list[dict[str, Any]]:
        return self.client.get("/machines").json()["machines"]

    def cell(self) -> dict[str, Any]:
        return self.client.get("/cell").json()

    def stop(self) -> None:
        for proc in self.hosts:
            if proc.poll() is None:
                try:
                    proc.stdin.write("quit\n")
                    proc.stdin.flush()
                except OSError:
                    pass
        for proc in self.hosts:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.master is not None and self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            try:
                self.master.wait(60)
            except subprocess.TimeoutExpired:
                self.master.kill()
                self.master.wait(5)
        if self.client is not None:
            self.client.close()
        for log in self._logs:
            log.close()


def wait_for(what: str, predicate, timeout_s: float, every_s: float = 0.2) -> float:
    """Poll ``predicate`` until truthy; return when (time.time()); raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)


def run_one(n: int, args: argparse.Namespace, echo) -> dict[str, Any]:
    out: dict[str, Any] = {"agents": n, "poll_interval_s": args.poll_interval, "misses_to_down": args.misses_to_down}
    hosts = args.hosts or max(1, math.ceil(n / args.agents_per_host))
    out["hollow_hosts"] = hosts
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-hollow-"))
    cell = HollowCell(workdir, n, hosts, args.poll_interval, args.misses_to_down, args.profile, echo)
    cell.tasks_per_agent = args.tasks_per_agent
    try:
        t0 = time.time()
        cell.start_master()
        master = psutil.Process(cell.master.pid)
        cell.start_hosts()
        wait_for(f"{n} machines up", lambda: sum(m["state"] == "up" for m in cell.machines()) >= n, 60 + n * 0.1, 0.5)
        out["register_s"] = round(time.time() - t0, 2)
        echo(f"N={n}: {n} machines up after {out['register_s']}s")

        # ---- placements through the live path
        total = n * args.tasks_per_agent
        began = time.time()
        for j in range(math.ceil(total / TASKS_PER_JOB)):
            count = min(TASKS_PER_JOB, total - j * TASKS_PER_JOB)
            spec = {"name": f"sleepers{j}", "tasks": count, "priority": 4, "appclass": "batch",
                    "command": "sleep", "args": ["3600"], "resources": {"cpu": 1, "memory": "64Mi"}}
            r = cell.client.post("/jobs", json=spec)
            if r.status_code != 201:
                raise RuntimeError(f"submit sleepers{j}: HTTP {r.status_code} {r.text[:300]}")
        out["submit_s"] = round(time.time() - began, 2)
        placed = wait_for(f"{total} tasks placed", lambda: cell.cell()["tasks"].get("running", 0) >= total,
                          60 + total * 0.01, 0.25)
        out["placed_per_s"] = round(total / (placed - began), 1) if total else None
        started = wait_for(f"{total} tasks running on the agents",
                           lambda: sum(s["running"] for s in cell.stats()) >= total, 60 + total * 0.01, 0.25)
        out["started_per_s"] = round(total / (started - began), 1) if total else None
        out["tasks"] = total
        echo(f"N={n}: {total} tasks placed in {placed - began:.1f}s, running on the agents in {started - began:.1f}s")

        # ---- a steady window
        time.sleep(min(5.0, 3 * args.poll_interval))  # let the reports of the last starts settle
        before = cell.stats()
        psutil.cpu_percent(interval=None)
        cpu0, wall0 = master.cpu_times(), time.monotonic()
        time.sleep(args.window)
        cpu1, wall1 = master.cpu_times(), time.monotonic()
        after = cell.stats()
        polls = sum(a["polls"] for a in after) - sum(b["polls"] for b in before)
        master_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        periods = [s for s in after if s["periods"]]
        weight = sum(s["periods"] for s in periods) or 1
        out["achieved_period_mean_s"] = round(sum(s["period_mean_s"] * s["periods"] for s in periods) / weight, 3)
        out["achieved_period_p50_s"] = max(s["period_p50_s"] for s in periods) if periods else None
        out["achieved_period_p99_s"] = max(s["period_p99_s"] for s in periods) if periods else None
        out["polls_per_s"] = round(polls / (wall1 - wall0), 1)
        out["master_cpu_s_per_poll"] = round(master_cpu / polls, 6) if polls else None
        out["master_cpu_util"] = round(master_cpu / (wall1 - wall0), 3)
        out["master_rss_mib"] = round(master.memory_info().rss / 2**20, 1)
        hollow_cpu = sum(a["cpu_s"] - b["cpu_s"] for a, b in zip(after, before))
        out["hollow_cpu_util"] = round(hollow_cpu / (wall1 - wall0), 3)
        out["hollow_cpu_s_per_poll"] = round(hollow_cpu / polls, 6) if polls else None
        out["machine_cpu_busy"] = round(psutil.cpu_percent(interval=None) / 100, 3)
        echo(f"N={n}: steady: {json.dumps({k: out[k] for k in out if k.startswith(('achieved', 'polls', 'master', 'hollow'))})}")

        # ---- failure detection
        victim = f"h{n // 2}"
        host = cell.hosts[(n // 2) // math.ceil(n / hosts)]
        killed_at = time.time()
        assert cell.ask(host, f"kill {victim}") == f"killed {victim}"
        lost = wait_for(f"{victim} to be seen down",
                        lambda: cell.client.get(f"/machines/{victim}").json()["state"] != "up",
                        60 + 10 * args.poll_interval, 0.05)
        out["detect_s"] = round(lost - killed_at, 2)
        out["detect_periods"] = round(out["detect_s"] / max(out["achieved_period_mean_s"], 1e-9), 2)
        echo(f"N={n}: {victim} seen down after {out['detect_s']}s")
    finally:
        cell.stop()
        if args.profile and (workdir / "profile.json").exists():
            out["profile"] = json.loads((workdir / "profile.json").read_text())
        if args.keep:
            echo(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_profiled-master"]:
        _profiled_master(argv[1], argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, action="append", help="hollow agents (repeatable; default "
                                                                      "250, 500, 1000, 2000)")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--misses-to-down", type=int, default=3)
    parser.add_argument("--tasks-per-agent", type=int, default=20, help="sleep 3600 tasks placed on each agent "
                                                                          "(its capacity fits exactly these)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds of steady polling measured")
    parser.add_argument("--hosts", type=int, default=0, help="hollow helper processes (default: one per "
                                                               "--agents-per-host agents)")
    # 500: at 1,000 agents two hollow processes, so the hollow side (one GIL each) spreads over the cores
    # as kubemark spreads hollow nodes over pods.
    parser.add_argument("--agents-per-host", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="sample the master's threads; add the hottest "
                                                               "functions")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, store)")
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    args = parser.parse_args(argv)
    echo = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))

    def _term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for n in args.agents or [250, 500, 1000, 2000]:
            try:
                print(json.dumps(run_one(n, args, echo)), flush=True)
            except (TimeoutError, RuntimeError) as e:
                print(json.dumps({"agents": n, "error": str(e)}), flush=True)
    except KeyboardInterrupt:
        print("interrupted; the cell was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
