"""corral up's restarts: at once, then with backoff, then giving up; each one logged (fake children,
a fake clock: the real processes are tests/e2e/test_failures.py)."""

from __future__ import annotations

import pytest

from corral.cli.up_restarts import RestartPolicy, Supervision


class Child:
    def __init__(self, pid: int, code: int | None = None):
        self.pid, self.returncode = pid, code

    def poll(self) -> int | None:
        return self.returncode


@pytest.mark.parametrize("crash_times, delays", [
    ([0], [0.0]),
    ([0, 1, 2, 3], [0.0, 1.0, 2.0, 4.0]),
    ([0, 1, 2, 3, 4, 5], [0.0, 1.0, 2.0, 4.0, 8.0, None]),  # a sixth crash within the window: give up
    ([0, 1, 2, 3, 4, 200], [0.0, 1.0, 2.0, 4.0, 8.0, 0.0]),  # the old crashes left the window
], ids=["the first crash restarts at once", "later ones back off doubling",
        "more than max_restarts crashes in the window give up", "crashes older than the window are forgotten"])
def test_the_restart_policy_backs_off_and_gives_up_within_its_window(crash_times, delays):
    policy = RestartPolicy(max_restarts=5, window_s=120.0, backoff_s=1.0, backoff_max_s=30.0)
    assert [policy.crashed("master", t) for t in crash_times] == delays


def test_backoff_is_capped():
    policy = RestartPolicy(max_restarts=100, window_s=1000.0, backoff_s=1.0, backoff_max_s=5.0)
    assert [policy.crashed("m1", t) for t in range(6)] == [0.0, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_supervision_restarts_a_crashed_child_logs_each_step_and_gives_up_with_a_clear_message():
    now = [0.0]
    procs = {"master": Child(10), "m1": Child(11)}
    lines: list[str] = []
    next_pid = iter(range(100, 200))

    def restart(name: str) -> None:
        procs[name] = Child(next(next_pid))

    sup = Supervision(restart, lines.append, RestartPolicy(max_restarts=2, window_s=60.0, backoff_s=1.0),
                      clock=lambda: now[0])
    assert sup.check(procs) is None and lines == []
    procs["master"].returncode = -9
    assert sup.check(procs) is None  # the first crash: started again at once
    assert lines == ["corral up: master exited with -9; starting it again",
                     "corral up: starting master again (restart 1 of at most 2 in 60s)",
                     "corral up: master is back (pid 100)"]
    assert procs["m1"].pid == 11  # the rest of the cell is left alone
    procs["master"].returncode = 1
    lines.clear()
    assert sup.check(procs) is None
    assert lines == ["corral up: master exited with 1; starting it again in 1s"]
    now[0] += 0.5
    assert sup.check(procs) is None and procs["master"].pid == 100  # not yet
    now[0] += 0.6
    assert sup.check(procs) is None and procs["master"].pid == 101
    procs["master"].returncode = 1
    why = sup.check(procs)
    assert why == "master exited with 1; it crashed 3 times within 60s (at most 2 restarts): giving up"
    assert sup.restarts == 2


def test_a_child_that_fails_to_start_again_counts_as_another_crash():
    now = [0.0]
    procs = {"m1": Child(11, code=-9)}
    lines: list[str] = []

    def restart(name: str) -> None:
        procs[name] = Child(12, code=1)
        raise RuntimeError("m1 exited with 1; see m1.log")

    sup = Supervision(restart, lines.append, RestartPolicy(max_restarts=1, window_s=60.0), clock=lambda: now[0])
    why = sup.check(procs)
    assert why == ("m1 did not start again: m1 exited with 1; see m1.log; it crashed 2 times within 60s "
                   "(at most 1 restarts): giving up")
