"""Colocation on real processes in real control groups: a CPU-burning batch task beside a
latency-sensitive task whose load jumps. The batch task's CPU cap (cgroup v2 ``cpu.max``, v1
``cpu.cfs_quota_us``) must fall within 1 s, the latency-sensitive task must then get at least its
request (measured from its cgroup's CPU counter: ``cpu.stat`` usage_usec on v2, ``cpuacct.usage`` on
v1), and the cap must rise again once the load is gone.

Both tasks are pinned to one CPU so that they contend whatever the machine's size, and the test's
cgroup root gets a large CPU weight so that other work on a shared machine does not decide the
measurement. The agent is told its machine has that one CPU (``capacity_milli=1000``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from corral.agent import cgroups
from corral.agent import supervisor as sv
from corral.agent.colocation import ColocationConfig
from corral.agent.isolation import CGROUP_V1, CGROUP_V2, CFS_PERIOD_US
from corral.agent.launch import parse_launch

from .conftest import wait_until

LS_REQUEST = 500  # millicores
BATCH_LIMIT = 1000
BURN = "while True: pass"
# Burns while the flag file exists, sleeps while it does not.
LOADED = ("import os, sys, time\n"
          "flag = sys.argv[1]\n"
          "print('ready', flush=True)\n"
          "while True:\n"
          "    if not os.path.exists(flag):\n"
          "        time.sleep(0.005)\n"
          "        continue\n"
          "    end = time.monotonic() + 0.05\n"
          "    while time.monotonic() < end: pass\n")


def cpu_controller(isolation) -> Path | None:
    """The test cgroup root's directory in the cpu hierarchy, or None when there is no writable one."""
    if isolation.name == CGROUP_V2:
        mounts = cgroups.discover()
        return isolation.roots["unified"] if "cpu" in mounts.v2_controllers else None
    if isolation.name == CGROUP_V1:
        return isolation.roots.get("cpu") if "cpuacct" in isolation.roots else None
    return None


def quota_of(box) -> int | None:
    """The cap in force on a sandbox, read back from the kernel's file (None: no cap)."""
    if "unified" in box.dirs:
        quota = cgroups.read(box.dirs["unified"] / "cpu.max").split()[0]
        return None if quota == "max" else int(quota)
    quota = cgroups.read_int(box.dirs["cpu"] / "cpu.cfs_quota_us")
    return None if quota is None or quota < 0 else quota


def box_of(runner, task_id):
    with runner.lock:
        return next(p.box for p in runner.procs.values() if p.task_id == task_id)


def cpu_rate(isolation, box, seconds: float) -> float:
    """Millicores the sandbox used over the next ``seconds``, from its cgroup's cumulative counter."""
    before, t0 = isolation.usage(box)[0], time.monotonic()
    time.sleep(seconds)
    after, t1 = isolation.usage(box)[0], time.monotonic()
    return (after - before) / (t1 - t0) * 1000


def test_batch_is_throttled_within_a_second_when_the_service_load_jumps(make_runner, isolation, tmp_path):
    root = cpu_controller(isolation)
    if root is None:
        pytest.skip(f"needs a writable cgroup cpu controller (cgroup v2 with cpu, or v1 cpu and cpuacct); "
                    f"this machine gives {isolation.describe()}")
    runner = make_runner(colocation=ColocationConfig(capacity_milli=1000, release_after_s=1.0),
                         colocation_interval_s=0.1)
    if isolation.name == CGROUP_V2:
        cgroups.write(root / "cpu.weight", 10_000)
    else:
        cgroups.write(root / "cpu.shares", 262_144)
    cpu = str(min(os.sched_getaffinity(0)))
    flag = tmp_path / "load"
    runner.submit(sv.Launch(parse_launch({
        "task_id": "batch", "command": "taskset", "args": ["-c", cpu, sys.executable, "-c", BURN],
        "priority": 2, "appclass": "batch", "resources": {"cpu": BATCH_LIMIT, "memory": 256 * 2**20}})))
    runner.submit(sv.Launch(parse_launch({
        "task_id": "web", "command": "taskset", "args": ["-c", cpu, sys.executable, "-c", LOADED, str(flag)],
        "priority": 10, "appclass": "latency-sensitive", "resources": {"cpu": LS_REQUEST, "memory": 256 * 2**20}})))
    wait_until(lambda: all((runner.status(t) or {}).get("state") == "running" for t in ("batch", "web")), 10,
               "both tasks to run")
    batch_box, web_box = box_of(runner, "batch"), box_of(runner, "web")
    wait_until(lambda: "ready" in runner.logs("web", "stdout", 1), 10, "the service to start (its start-up burns CPU)")
    idle_cap = (1000 - 50) * CFS_PERIOD_US // 1000  # the service idle: it reserves 10 % of its request
    time.sleep(0.3)
    wait_until(lambda: quota_of(batch_box) == idle_cap, 5, "the batch cap with the service idle")
    assert cpu_rate(isolation, batch_box, 0.5) > 0.3 * 950, "the batch task should be burning"

    flag.touch()
    jumped = time.monotonic()
    throttled_cap = (1000 - LS_REQUEST) * CFS_PERIOD_US // 1000
    wait_until(lambda: (quota_of(batch_box) or 10**9) <= throttled_cap, 2, "batch to be throttled")
    reaction = time.monotonic() - jumped
    assert reaction < 1.0, f"batch was throttled {reaction:.2f} s after the service's load jumped"

    web_rate = cpu_rate(isolation, web_box, 2.0)
    batch_rate = cpu_rate(isolation, batch_box, 1.0)
    print(f"reaction {reaction:.3f} s, service {web_rate:.0f}m, batch {batch_rate:.0f}m")
    assert web_rate >= 0.9 * LS_REQUEST, f"the service got {web_rate:.0f}m of its {LS_REQUEST}m request"
    assert batch_rate <= 1.1 * (1000 - LS_REQUEST), f"batch got {batch_rate:.0f}m while throttled"

    flag.unlink()
    released = time.monotonic()
    wait_until(lambda: quota_of(batch_box) == idle_cap, 5, "the CPU to go back to batch")
    assert time.monotonic() - released >= 0.9, "the cap should be held for release_after_s after the load fell"
    runner.submit(sv.Kill("batch"), sv.Kill("web"))
    wait_until(lambda: not runner.procs, 10, "both tasks to exit")
