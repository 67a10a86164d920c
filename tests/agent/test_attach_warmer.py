"""The cgroup v1 attach warmer: which file it writes, when it writes and when it stops."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from corral.agent import cgroups
from corral.agent.attach_warmer import AttachWarmer, own_tasks_file
from tests.agent.conftest import wait_until

PROC_CGROUP = "12:pids:/user.slice\n4:cpu,cpuacct:/agents/m1\n1:name=systemd:/\n0::/\n"


def test_the_tasks_file_is_the_threads_own_cgroup_in_that_hierarchy():
    mount = Path("/sys/fs/cgroup/cpu,cpuacct")
    assert own_tasks_file(mount, "cpuacct", PROC_CGROUP) == mount / "agents/m1/tasks"
    assert own_tasks_file(Path("/sys/fs/cgroup/pids"), "pids", PROC_CGROUP) == Path("/sys/fs/cgroup/pids/user.slice/tasks")
    assert own_tasks_file(mount, "memory", PROC_CGROUP) is None


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_it_writes_its_thread_id_while_tasks_start_and_goes_quiet_after_the_linger(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.write_text("")
    clock = Clock()
    warmer = AttachWarmer(lambda: tasks, period_s=0.001, linger_s=2.0, clock=clock)
    try:
        assert warmer.writes == 0  # nothing before the first start
        warmer.poke()
        wait_until(lambda: warmer.writes >= 5, what="writes while warm")
        tid = warmer._thread.native_id
        assert tasks.read_text() == str(tid) and tid != threading.get_native_id()
        clock.t = 2.5  # the linger is over: it waits for the next poke
        time.sleep(0.05)
        quiet = warmer.writes
        time.sleep(0.05)
        assert warmer.writes == quiet
        warmer.poke()
        wait_until(lambda: warmer.writes > quiet + 3, what="writes after the next start")
    finally:
        warmer.stop()
    assert not warmer._thread.is_alive()


def test_a_file_it_cannot_write_turns_it_off_for_good(tmp_path):
    warmer = AttachWarmer(lambda: tmp_path / "missing" / "tasks", period_s=0.001)
    warmer.poke()
    wait_until(lambda: warmer.disabled, what="the warmer to turn itself off")
    assert "No such file" in warmer.disabled and warmer.writes == 0
    warmer.poke()  # nothing starts again
    warmer.stop()
    assert not warmer._thread.is_alive()


@pytest.mark.skipif("cpuacct" not in cgroups.discover().v1 or os.geteuid() != 0,
                    reason="needs a writable cgroup v1 cpuacct hierarchy (root)")
def test_on_a_real_hierarchy_it_never_moves_the_agent():
    before = Path("/proc/self/cgroup").read_text()
    mount = cgroups.discover().v1["cpuacct"]
    warmer = AttachWarmer(lambda: own_tasks_file(mount, "cpuacct"), period_s=0.002, linger_s=1.0)
    try:
        warmer.poke()
        wait_until(lambda: warmer.writes >= 5 or warmer.disabled, what="writes to the real tasks file")
        assert warmer.disabled is None
        thread_cgroup = Path(f"/proc/self/task/{warmer._thread.native_id}/cgroup").read_text()
        assert thread_cgroup == before  # a move to where it already was
    finally:
        warmer.stop()
    assert Path("/proc/self/cgroup").read_text() == before
