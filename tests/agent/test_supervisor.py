"""The sans-IO supervisor, driven by hand: events in, instructions out, a fake clock, no sleeps."""

from __future__ import annotations

import pytest

from corral.agent import supervisor as sv
from corral.agent.launch import parse_launch


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def launch(task_id="t1", generation=0, **fields):
    body = {"task_id": task_id, "generation": generation, "command": "sleep", "args": ["60"]}
    body.update(fields)
    return parse_launch(body)


def machine(grace=5.0):
    clock = FakeClock()
    return clock, sv.Supervisor(clock, kill_grace_s=grace, validate=True)


def start(m: sv.Supervisor, task_id="t1", pid=100, **fields) -> int:
    (spawn,) = m.handle(sv.Launch(launch(task_id, **fields)))
    assert isinstance(spawn, sv.Spawn)
    m.handle(sv.Started(task_id, spawn.attempt, pid))
    return spawn.attempt


def spawns(instructions):
    return [i for i in instructions if isinstance(i, sv.Spawn)]


@pytest.mark.parametrize(
    "case, restart, exit_codes, want_delays, want_state",
    [
        ("a task that keeps crashing is restarted after 1, 2, 4 seconds and given up after the fourth failure",
         {"max_failures": 4, "backoff_s": 1, "backoff_max_s": 60}, [1, 1, 1, 1], [1, 2, 4], "failed"),
        ("the backoff never exceeds backoff_max_s",
         {"max_failures": 6, "backoff_s": 1, "backoff_max_s": 3}, [1, 1, 1, 1, 1, 1], [1, 2, 3, 3, 3], "failed"),
        ("a task that exits 0 finishes and is not restarted",
         {"max_failures": 3, "backoff_s": 1}, [0], [], "finished"),
        ("a task that fails once and then exits 0 finishes with one failure counted",
         {"max_failures": 3, "backoff_s": 2}, [3, 0], [2], "finished"),
        ("max_failures 1 gives up at the first failure",
         {"max_failures": 1, "backoff_s": 1}, [1], [], "failed"),
        ("a task killed by a signal it did not ask for counts as a failure",
         {"max_failures": 2, "backoff_s": 1}, [-9, -9], [1], "failed"),
    ],
)
def test_restart_policy(case, restart, exit_codes, want_delays, want_state):
    clock, m = machine()
    attempt = start(m, restart=restart)
    delays = []
    for i, code in enumerate(exit_codes):
        assert m.handle(sv.Exited("t1", attempt, code)) == []
        rec = m.tasks["t1"]
        if rec.state != sv.BACKOFF:
            break
        delay = rec.restart_at - clock.now
        delays.append(delay)
        clock.now += delay - 0.01
        assert spawns(m.handle(sv.Tick())) == [], "restarted before its backoff ran out"
        clock.now += 0.01
        (spawn,) = spawns(m.handle(sv.Tick()))
        assert spawn.attempt == attempt + 1
        attempt = spawn.attempt
        m.handle(sv.Started("t1", attempt, 200 + i))
    assert delays == want_delays
    assert m.tasks["t1"].state == want_state
    if want_state == "failed":
        assert m.tasks["t1"].failures == restart["max_failures"]


def test_a_run_longer_than_reset_after_starts_the_failure_count_afresh():
    clock, m = machine()
    attempt = start(m, restart={"max_failures": 2, "backoff_s": 1, "reset_after_s": 600})
    m.handle(sv.Exited("t1", attempt, 1))  # failure 1, right away
    clock.now += 1
    (spawn,) = spawns(m.handle(sv.Tick()))
    m.handle(sv.Started("t1", spawn.attempt, 201))
    clock.now += 601  # a long healthy run
    m.handle(sv.Exited("t1", spawn.attempt, 1))
    rec = m.tasks["t1"]
    assert (rec.state, rec.failures) == (sv.BACKOFF, 1)
    assert rec.restart_at - clock.now == 1  # the backoff starts over too
    clock.now += 1
    (spawn,) = spawns(m.handle(sv.Tick()))
    m.handle(sv.Started("t1", spawn.attempt, 202))
    m.handle(sv.Exited("t1", spawn.attempt, 1))  # a quick second failure: now it gives up
    assert (m.tasks["t1"].state, m.tasks["t1"].failures) == (sv.FAILED, 2)


def test_a_command_that_cannot_start_backs_off_with_the_os_error_and_counts_as_a_failure():
    clock, m = machine()
    (spawn,) = m.handle(sv.Launch(launch(restart={"max_failures": 2, "backoff_s": 1})))
    m.handle(sv.StartFailed("t1", spawn.attempt, "No such file or directory: 'nosuchbinary'"))
    rec = m.tasks["t1"]
    assert (rec.state, rec.failures, rec.last_error) == ("backoff", 1, "No such file or directory: 'nosuchbinary'")
    clock.now += 1
    (again,) = spawns(m.handle(sv.Tick()))
    m.handle(sv.StartFailed("t1", again.attempt, "No such file or directory: 'nosuchbinary'"))
    assert (rec.state, rec.failures) == ("failed", 2)


def test_the_same_task_id_and_generation_again_is_a_no_op():
    _, m = machine()
    start(m)
    assert m.handle(sv.Launch(launch())) == []
    assert m.tasks["t1"].state == "running"


def test_a_new_generation_stops_the_old_process_and_starts_the_new_one_once_it_exited():
    _, m = machine()
    attempt = start(m)
    out = m.handle(sv.Launch(launch(generation=1)))
    assert out == [sv.Signal("t1", attempt, "TERM")]
    (spawn,) = spawns(m.handle(sv.Exited("t1", attempt, -15)))
    assert spawn.launch.generation == 1
    assert m.tasks["t1"].state == "starting" and m.tasks["t1"].failures == 0


def test_kill_sends_term_then_kill_after_the_grace_period_and_ends_killed():
    clock, m = machine(grace=5)
    attempt = start(m)
    assert m.handle(sv.Kill("t1")) == [sv.Signal("t1", attempt, "TERM")]
    clock.now += 4.9
    assert m.handle(sv.Tick()) == []
    clock.now += 0.2
    assert m.handle(sv.Tick()) == [sv.Signal("t1", attempt, "KILL")]
    assert m.handle(sv.Tick()) == [], "SIGKILL is sent once"
    m.handle(sv.Exited("t1", attempt, -9))
    rec = m.tasks["t1"]
    assert (rec.state, rec.failures) == ("killed", 0)


def test_a_kill_while_in_backoff_ends_the_task_without_a_restart():
    clock, m = machine()
    attempt = start(m, restart={"backoff_s": 5})
    m.handle(sv.Exited("t1", attempt, 1))
    m.handle(sv.Kill("t1"))
    clock.now += 100
    assert m.handle(sv.Tick()) == []
    assert m.tasks["t1"].state == "killed"


def test_an_exit_from_an_older_attempt_is_ignored():
    clock, m = machine()
    attempt = start(m, restart={"backoff_s": 1})
    m.handle(sv.Exited("t1", attempt, 1))
    clock.now += 1
    (spawn,) = spawns(m.handle(sv.Tick()))
    m.handle(sv.Started("t1", spawn.attempt, 300))
    assert m.handle(sv.Exited("t1", attempt, 1)) == []
    assert m.tasks["t1"].state == "running" and m.tasks["t1"].failures == 1


HEALTH = {"http": "http://127.0.0.1:9/healthz", "interval_s": 10, "timeout_s": 1, "failures": 3}


@pytest.mark.parametrize(
    "case, results, want_state, want_failures, want_healthy",
    [
        ("three failed checks in a row restart the task and count one failure",
         [False, False, False], "backoff", 1, False),
        ("a passing check resets the count of consecutive failures",
         [False, False, True, False, False], "running", 0, True),
        ("passing checks leave the task running and healthy",
         [True, True], "running", 0, True),
    ],
)
def test_health_checks(case, results, want_state, want_failures, want_healthy):
    clock, m = machine(grace=2)
    attempt = start(m, health_check=HEALTH, restart={"max_failures": 5, "backoff_s": 1})
    assert m.handle(sv.Tick()) == [], "the first check waits one interval"
    for ok in results:
        clock.now += 10
        (check,) = m.handle(sv.Tick())
        assert isinstance(check, sv.CheckHealth) and check.attempt == attempt
        assert m.handle(sv.Tick()) == [], "one check at a time"
        out = m.handle(sv.HealthResult("t1", attempt, ok, "HTTP 500"))
        if out:
            assert out == [sv.Signal("t1", attempt, "TERM")]
            m.handle(sv.Exited("t1", attempt, -15))
            break
    rec = m.tasks["t1"]
    assert (rec.state, rec.failures) == (want_state, want_failures)
    if want_state == "running":
        assert rec.healthy is want_healthy
    else:
        assert "3 consecutive health checks failed" in rec.last_error


def test_an_evicted_task_is_killed_with_the_reason_and_not_restarted():
    clock, m = machine()
    attempt = start(m)
    assert m.handle(sv.Evict("t1", "evicted: machine memory pressure")) == [sv.Signal("t1", attempt, "TERM")]
    m.handle(sv.Exited("t1", attempt, -15))
    rec = m.tasks["t1"]
    assert (rec.state, rec.failures, rec.last_error) == ("killed", 0, "evicted: machine memory pressure")
    clock.now += 1000
    assert m.handle(sv.Tick()) == []


def test_assignments_kill_tasks_not_listed_and_forget_dead_ones():
    _, m = machine()
    keep, stray = start(m, "keep"), start(m, "stray", pid=101)
    (dead_spawn,) = m.handle(sv.Launch(launch("dead", restart={"max_failures": 1})))
    m.handle(sv.StartFailed("dead", dead_spawn.attempt, "boom"))
    out = m.handle(sv.Assign(frozenset({"keep"})))
    assert sv.Signal("stray", stray, "TERM") in out
    assert sv.Forget("dead") in out
    assert "dead" not in m.tasks and m.tasks["keep"].state == "running"
    m.handle(sv.Exited("stray", stray, -15))
    assert m.tasks["stray"].state == "killed"


def test_a_kill_that_arrives_while_starting_is_carried_out_once_started():
    _, m = machine()
    (spawn,) = m.handle(sv.Launch(launch()))
    assert m.handle(sv.Kill("t1")) == []
    assert m.handle(sv.Started("t1", spawn.attempt, 42)) == [sv.Signal("t1", spawn.attempt, "TERM")]
    m.handle(sv.Exited("t1", spawn.attempt, -15))
    assert m.tasks["t1"].state == "killed"


def test_an_impossible_transition_raises_with_the_tasks_story():
    _, m = machine()
    start(m)
    rec = m.tasks["t1"]
    with pytest.raises(sv.InvalidTransition, match="running -> starting.*story: #"):
        m._transition(rec, sv.STARTING, sv.Tick(), "by hand")


# ---------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

IDS = ("a", "b")


@st.composite
def stimuli(draw):
    kind = draw(st.sampled_from(["launch", "kill", "assign", "evict", "started", "startfailed",
                                 "exited", "health", "tick"]))
    task_id = draw(st.sampled_from(IDS))
    attempt = draw(st.integers(1, 4))
    if kind == "launch":
        return sv.Launch(launch(task_id, generation=draw(st.integers(0, 2)),
                                health_check=HEALTH if draw(st.booleans()) else None,
                                restart={"max_failures": draw(st.integers(0, 3)), "backoff_s": 1}))
    if kind == "kill":
        return sv.Kill(task_id)
    if kind == "assign":
        return sv.Assign(frozenset(draw(st.sets(st.sampled_from(IDS)))))
    if kind == "evict":
        return sv.Evict(task_id, "pressure")
    if kind == "started":
        return sv.Started(task_id, attempt, 100 + attempt)
    if kind == "startfailed":
        return sv.StartFailed(task_id, attempt, "boom")
    if kind == "exited":
        return sv.Exited(task_id, attempt, draw(st.sampled_from([0, 1, -9, -15])))
    if kind == "health":
        return sv.HealthResult(task_id, attempt, draw(st.booleans()))
    return sv.Tick()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(stimuli(), st.floats(0, 20)), max_size=40))
def test_any_sequence_of_events_keeps_the_invariants(steps):
    """Whatever arrives, in whatever order, the supervisor never breaks an invariant or raises."""
    clock, m = machine(grace=5)
    for event, advance in steps:
        clock.now += advance
        for ins in m.handle(event):  # validate=True checks invariants after every event
            if isinstance(ins, (sv.Spawn, sv.Signal, sv.CheckHealth)):
                rec = m.tasks.get(ins.task_id)
                assert rec is not None and ins.attempt == rec.attempt, f"{ins} is not about the current attempt"


def test_a_late_health_result_from_the_previous_generation_does_not_touch_the_new_one():
    clock, m = machine(grace=1)
    old = start(m, health_check=HEALTH)
    clock.now += 10
    (check,) = m.handle(sv.Tick())
    (signal,) = m.handle(sv.Launch(launch(generation=1, health_check=HEALTH)))
    (spawn,) = spawns(m.handle(sv.Exited("t1", old, -15)))
    assert spawn.attempt != old
    m.handle(sv.Started("t1", spawn.attempt, 500))
    assert m.handle(sv.HealthResult("t1", check.attempt, False, "late")) == []
    rec = m.tasks["t1"]
    assert (rec.healthy, rec.health_failures, rec.launch.generation) == (None, 0, 1)
