"""The supervisor's first health check waits for initial_delay_s; OOM kills are counted per task."""

from __future__ import annotations

import pytest

from corral.agent import supervisor as sv

from .test_supervisor import machine, start

CHECK = {"command": ["true"], "interval_s": 10, "timeout_s": 1, "failures": 1}


# (case, the check, seconds after the start, whether a check is due)
DELAYS = [
    ("without initial_delay_s the first check is one interval after the start", CHECK, 9.9, False),
    ("without initial_delay_s the first check comes at one interval", CHECK, 10.0, True),
    ("initial_delay_s 0 checks at once", {**CHECK, "initial_delay_s": 0}, 0.0, True),
    ("initial_delay_s 30 waits past the interval", {**CHECK, "initial_delay_s": 30}, 29.0, False),
    ("initial_delay_s 30 checks at 30", {**CHECK, "initial_delay_s": 30}, 30.0, True),
]


@pytest.mark.parametrize("case,check,after,due", DELAYS, ids=[c[0] for c in DELAYS])
def test_the_first_health_check_comes_after_the_initial_delay(case, check, after, due):
    clock, m = machine()
    start(m, health_check=check)
    clock.now += after
    checks = [i for i in m.handle(sv.Tick()) if isinstance(i, sv.CheckHealth)]
    assert bool(checks) is due


def test_each_oom_kill_is_counted_and_survives_the_restarts():
    clock, m = machine()
    attempt = start(m, restart={"max_failures": 5, "backoff_s": 1}, resources={"memory": 64 * 2**20})
    for n in (1, 2):
        m.handle(sv.Exited("t1", attempt, -9, "killed by the kernel OOM killer at its memory limit of 64Mi", oom=True))
        rec = m.tasks["t1"]
        assert rec.oom_kills == n and rec.state == sv.BACKOFF and "OOM" in rec.last_error
        clock.now += 10
        (spawn,) = [i for i in m.handle(sv.Tick()) if isinstance(i, sv.Spawn)]
        attempt = spawn.attempt
        m.handle(sv.Started("t1", attempt, 200 + n))
    m.handle(sv.Exited("t1", attempt, 1))  # an ordinary crash is not an OOM kill
    assert m.tasks["t1"].oom_kills == 2
