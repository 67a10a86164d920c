"""Failure detection in the core: machines going down and up, the rescheduling rate limit,
taking back tasks a returning machine still runs, and failing over across machines."""

from __future__ import annotations

import pytest

from corral.master.clock import ManualClock
from corral.master.commands import AgentReport, MachineDown, MachineUp
from corral.master.core import MasterCore
from corral.master.failover import failed_machines
from corral.master.liveness import Liveness, RescheduleLimiter
from corral.master.state import CellState
from corral.model.job import JobState, TaskState

from tests.master.helpers import Harness

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


def replayed(h: Harness) -> CellState:
    return MasterCore.rebuild(h.store)


def status(task, state="running", **fields):
    return {"task_id": task.name, "generation": task.generation, "state": state, **fields}


# ---- Liveness ------------------------------------------------------------------------------------

def test_a_machine_is_down_after_the_configured_number_of_consecutive_misses_only():
    live = Liveness(misses_to_down=3)
    assert [live.missed("m1"), live.missed("m1")] == [False, False]
    assert live.answered("m1") is False  # an answer resets the count
    assert [live.missed("m1"), live.missed("m1"), live.missed("m1")] == [False, False, True]
    assert live.is_down("m1") and live.missed("m1") is False  # flips once
    assert live.answered("m1") is True and not live.is_down("m1")


# ---- the rate limit ------------------------------------------------------------------------------

def test_the_limiter_releases_a_burst_then_at_most_rate_tasks_per_second():
    clock = ManualClock(0.0)
    limiter = RescheduleLimiter(clock, rate_per_s=5, burst=10)
    limiter.add([f"t{i}" for i in range(100)], "m1")
    assert len(limiter.release()) == 10
    assert limiter.release() == []
    released = 10
    for _ in range(20):  # 10 s in steps of 0.5 s
        clock.advance(0.5)
        out = limiter.release()
        assert len(out) <= 3
        released += len(out)
    assert released == 10 + 50  # burst + 10 s at 5/s, never more
    assert limiter.held("t99") == "m1" and limiter.held("t0") is None


def test_the_limiter_spends_nothing_on_tasks_that_stopped_waiting():
    clock = ManualClock(0.0)
    limiter = RescheduleLimiter(clock, rate_per_s=1, burst=2)
    limiter.add(["a", "b", "c", "d"], "m1")
    assert limiter.release(lambda n: n not in ("a", "b")) == ["c", "d"]


def test_a_large_outage_moves_tasks_no_faster_than_the_rate_limit():
    h = Harness()
    h.core.reschedule = RescheduleLimiter(h.clock, rate_per_s=2, burst=4)
    for m in ("m1", "m2", "m3"):
        h.machine(m, cpu="16", memory="64Gi")
    h.submit("a", tasks=24, cpu="500m", memory="1Gi")
    h.schedule()
    on = {m: [t for t in h.state.tasks_of("a.alice") if t.machine == m] for m in ("m1", "m2")}
    moving = len(on["m1"]) + len(on["m2"])
    assert moving > 8
    h.run(MachineDown("m1"))
    h.run(MachineDown("m2"))
    assert h.state.machines["m1"].state == "lost"
    pending = [t for t in h.state.tasks_of("a.alice") if t.state is P]
    assert len(pending) == moving and all(t.history[-1].via == "lost" for t in pending)
    h.schedule()
    assert sum(t.state is P for t in h.state.tasks_of("a.alice")) == moving - 4  # the burst only
    held = next(t for t in h.state.tasks_of("a.alice") if t.state is P)
    assert "waiting its turn to be rescheduled" in held.reason and "2 tasks/s" in held.reason
    h.clock.advance(1.0)
    h.schedule()
    assert sum(t.state is P for t in h.state.tasks_of("a.alice")) == moving - 6
    for _ in range(moving):
        h.clock.advance(1.0)
        h.schedule()
    assert all(t.state is R and t.machine == "m3" for t in h.state.tasks_of("a.alice"))
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_machine_that_answers_again_gets_back_the_tasks_not_yet_rescheduled_without_a_restart():
    h = Harness()
    h.core.reschedule = RescheduleLimiter(h.clock, rate_per_s=1, burst=1)
    h.machine("m1", cpu="16", memory="64Gi")
    h.machine("m2", cpu="16", memory="64Gi")
    h.submit("a", tasks=4, cpu="1", memory="1Gi")
    h.run(MachineDown("m2"))  # keep everything on m1 first
    h.schedule()
    tasks = h.state.tasks_of("a.alice")
    assert all(t.machine == "m1" for t in tasks)
    generations = {t.name: t.generation for t in tasks}
    h.run(MachineUp("m2"))
    h.run(MachineDown("m1"))
    h.schedule()  # the burst of one moves one task to m2
    moved = [t for t in tasks if t.state is R]
    assert len(moved) == 1 and moved[0].machine == "m2"
    out = h.run(MachineUp("m1", [status(t) if t is not moved[0] else
                                 {**status(t), "generation": generations[t.name]} for t in tasks]))
    assert h.state.machines["m1"].state == "up"
    back = [t for t in tasks if t is not moved[0]]
    assert all(t.state is R and t.machine == "m1" and t.generation == generations[t.name] for t in back)
    # the copy that was rescheduled elsewhere is killed on m1; nothing is started again
    assert [(type(e).__name__, e.task, e.machine) for e in out.effects] == [("KillTask", moved[0].name, "m1")]
    assert replayed(h).to_dict() == h.state.to_dict()


# ---- failing over across machines ----------------------------------------------------------------

def test_a_task_its_agent_gave_up_on_is_tried_elsewhere_then_fails_with_the_last_error():
    h = Harness()
    for m in ("m1", "m2", "m3", "m4"):
        h.machine(m)
    h.submit("bad")
    task = h.task("bad")
    seen = []
    for attempt in range(3):
        h.schedule()
        assert task.state is R and task.machine not in seen
        seen.append(task.machine)
        h.run(AgentReport(task.machine, [status(task, "failed", failures=3,
                                                last_error=f"No such file or directory: 'nosuchbinary' ({attempt})")]))
    assert task.state is D and h.state.jobs["bad.alice"].state is JobState.FAILED
    note = task.history[-1].note
    assert task.history[-1].via == "fail" and "3 machines" in note and note.endswith("'nosuchbinary' (2)")
    assert [t.via for t in task.history if t.via in ("failover", "fail")] == ["failover", "failover", "fail"]
    assert failed_machines(task.history) == seen[:2]
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_failing_task_in_a_cell_of_two_fails_after_both_machines():
    h = Harness()
    h.machine("m1")
    h.machine("m2")
    h.submit("bad")
    task = h.task("bad")
    h.schedule()
    first = task.machine
    h.run(AgentReport(first, [status(task, "failed", last_error="boom")]))
    assert task.state is P and "failed on " + first in task.history[-1].note
    h.schedule()
    assert task.state is R and task.machine != first
    h.run(AgentReport(task.machine, [status(task, "failed", last_error="boom again")]))
    assert task.state is D and task.history[-1].note.endswith("last error: boom again")


def test_a_task_that_fails_everywhere_fails_its_job_and_the_jobs_other_tasks_are_killed():
    h = Harness()
    h.machine("m1")
    h.submit("bad", tasks=3)
    h.schedule()
    tasks = h.state.tasks_of("bad.alice")
    out = h.run(AgentReport("m1", [status(tasks[1], "failed", last_error="boom")]))
    job = h.state.jobs["bad.alice"]
    assert job.state is JobState.FAILED and job.history[-1].via == "fail"
    assert "task 1 failed on m1; last error: boom" in job.history[-1].note
    assert all(t.state is D for t in tasks)
    assert sorted((type(e).__name__, e.task) for e in out.effects) == [("KillTask", tasks[0].name), ("KillTask", tasks[2].name)]
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_failed_over_task_waits_rather_than_go_back_to_the_machine_it_failed_on():
    h = Harness()
    h.machine("m1")
    h.submit("bad", cpu="1", memory="1Gi")
    h.schedule()
    task = h.task("bad")
    assert task.machine == "m1"
    h.machine("m2", cpu="1", memory="1Gi", kind="small")
    h.submit("filler", cpu="1", memory="1Gi", constraints=["kind == small"])
    h.schedule()
    assert h.task("filler").machine == "m2"
    h.run(AgentReport("m1", [status(task, "failed", last_error="boom")]))
    h.schedule()
    assert task.state is P and "1 where it failed before (m1)" in task.reason, task.reason


# ---- property: machines coming and going never break an invariant or the replay -----------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from corral.master.errors import AdmissionError  # noqa: E402
from corral.master.commands import Kill, Submit  # noqa: E402

MACHINES = ["m1", "m2", "m3"]
link_commands = st.one_of(
    st.builds(lambda j, n: ("submit", j, n), st.sampled_from(["a", "b"]), st.integers(1, 5)),
    st.builds(lambda j: ("kill", j), st.sampled_from(["a", "b"])),
    st.just(("schedule",)),
    st.just(("schedule",)),
    st.builds(lambda m: ("down", m), st.sampled_from(MACHINES)),
    st.builds(lambda m, stale: ("up", m, stale), st.sampled_from(MACHINES), st.booleans()),
    st.builds(lambda i, how: ("report", i, how), st.integers(0, 30),
              st.sampled_from(["failed", "finished", "killed", "running"])),
    st.builds(lambda s: ("time", s), st.sampled_from([0.1, 0.5, 2.0])),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(link_commands, min_size=1, max_size=40))
def test_downs_ups_readoptions_and_failovers_keep_every_invariant_and_replay_exactly(cmds):
    h = Harness()  # validate mode: invariants checked after every command
    h.core.reschedule = RescheduleLimiter(h.clock, rate_per_s=2, burst=2)
    for m in MACHINES:
        h.machine(m, cpu="4", memory="16Gi")
    last_on: dict[str, dict] = {m: {} for m in MACHINES}  # what each machine's agent still runs
    for cmd in cmds:
        try:
            if cmd[0] == "submit":
                job = h.state.jobs.get(f"{cmd[1]}.alice")
                if job is None or job.state.ended:
                    h.submit(cmd[1], tasks=cmd[2], cpu="1", memory="1Gi")
            elif cmd[0] == "kill":
                h.run(Kill(f"{cmd[1]}.alice"))
            elif cmd[0] == "schedule":
                h.schedule()
                for t in h.state.tasks.values():
                    if t.state is R:
                        last_on[t.machine][t.name] = status(t)
            elif cmd[0] == "down":
                h.run(MachineDown(cmd[1]))
            elif cmd[0] == "up":
                # The agent reports what it still runs (stale=False: it lost everything meanwhile).
                tasks = list(last_on[cmd[1]].values()) if cmd[2] else []
                h.run(MachineUp(cmd[1], tasks))
                if not cmd[2]:
                    last_on[cmd[1]] = {}
            elif cmd[0] == "report":
                running = sorted(n for n, t in h.state.tasks.items() if t.state is R)
                if running:
                    task = h.state.tasks[running[cmd[1] % len(running)]]
                    h.run(AgentReport(task.machine, [status(task, cmd[2], last_error="boom")]))
            elif cmd[0] == "time":
                h.clock.advance(cmd[1])
        except AdmissionError:
            pass
    live = h.state.to_dict()
    assert replayed(h).to_dict() == live
    for task in h.state.tasks.values():  # no task in two places: running means on an up machine
        if task.state is R:
            assert h.state.machines[task.machine].state == "up"
