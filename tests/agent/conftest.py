"""Shared fixtures: a private cgroup root per test, bounded waiting, agents that always stop."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from corral.agent import cgroups
from corral.agent.eviction import MemoryReading
from corral.agent.isolation import Isolation, detect
from corral.agent.runner import Runner


def wait_until(predicate: Callable[[], object], timeout_s: float = 5.0, what: str = "condition") -> object:
    """Poll ``predicate`` every 20 ms until it is truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cgroup_dirs(root_name: str) -> list[Path]:
    mounts = cgroups.discover()
    found = []
    for mount in [mounts.v2, *mounts.v1.values()]:
        if mount is not None and (mount / root_name).exists():
            found.append(mount / root_name)
    return found


class FakePressure:
    """A memory reading the test sets by hand."""

    def __init__(self, total: int = 16 * 2**30, available: int = 15 * 2**30):
        self.reading = MemoryReading(total, available)

    def __call__(self) -> MemoryReading:
        return self.reading

    def set_used_fraction(self, fraction: float) -> None:
        total = self.reading.total_bytes
        self.reading = MemoryReading(total, int(total * (1 - fraction)))


@pytest.fixture
def cgroup_root() -> str:
    name = f"corral-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    leftovers = cgroup_dirs(name)
    for directory in leftovers:
        cgroups.rmtree(directory)
    assert not leftovers, f"the test left cgroup directories behind: {leftovers}"


@pytest.fixture
def isolation(cgroup_root: str) -> Isolation:
    return detect(cgroup_root)


@pytest.fixture
def pressure() -> FakePressure:
    return FakePressure()


@pytest.fixture
def make_runner(tmp_path: Path, isolation: Isolation, pressure: FakePressure):
    runners: list[Runner] = []

    def make(**kwargs) -> Runner:
        settings = dict(kill_grace_s=1.0, tick_s=0.02, usage_interval_s=0.1, pressure_source=pressure,
                        memory_pressure_threshold=0.9, validate=True)
        settings.update(kwargs)
        runner = Runner(tmp_path / f"state{len(runners)}", isolation, **settings).start()
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        pids = [p.popen.pid for p in runner.procs.values()]
        runner.close()
        for pid in pids:
            wait_until(lambda: not pid_alive(pid), 5, f"pid {pid} to die at close")
