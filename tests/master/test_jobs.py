"""Jobs: killed in any state, ordered jobs waiting for, started after or rejected by the job they follow."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, Kill, KillTask, Tick
from corral.master.errors import AdmissionError
from corral.master.jobs import job_reply, waiting_reason
from corral.model.job import JobState, TaskState

from tests.master.helpers import Harness

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


def report(h: Harness, job: str, state: str, index: int = 0, **fields) -> None:
    task = h.task(job, index)
    h.run(AgentReport(task.machine, [{"task_id": task.name, "generation": task.generation, "state": state,
                                      **fields}]))


def cell(running: int, pending: int) -> Harness:
    """A job "web" with ``running`` tasks placed on m1 and ``pending`` more that do not fit."""
    h = Harness()
    h.machine("m1", cpu=str(running) if running else "1")
    h.submit("web", tasks=running + pending, cpu="1" if running else "2")
    h.schedule()
    return h


# (case, running, pending, the kill effects)
KILLS = [
    ("killing a pending job kills no process and ends its tasks", 0, 2, []),
    ("killing a running job kills each running task on its machine", 2, 0,
     [("0.web.alice.local", "m1"), ("1.web.alice.local", "m1")]),
    ("killing a job half running kills only the running tasks' processes", 1, 1, [("0.web.alice.local", "m1")]),
]


@pytest.mark.parametrize("case,running,pending,kills", KILLS, ids=[c[0] for c in KILLS])
def test_killing_a_live_job_ends_every_task_and_kills_the_running_ones(case, running, pending, kills):
    h = cell(running, pending)
    assert sum(t.state is R for t in h.state.tasks_of("web.alice")) == running
    out = h.run(Kill("web.alice"))
    assert [e.TYPE for e in out.events] == ["job_killed"]
    assert out.events[0].job == "web.alice" and out.events[0].note == "killed by its user"
    assert [(e.task, e.machine) for e in out.effects if isinstance(e, KillTask)] == kills
    assert all(e.reason == "the job was killed" and e.address == "http://m1" for e in out.effects)
    assert out.reply["state"] == "killed"
    assert h.state.jobs["web.alice"].state is JobState.KILLED
    assert {t.state for t in h.state.tasks_of("web.alice")} == {D}
    assert all(t.history[-1].via == "kill" for t in h.state.tasks_of("web.alice"))
    assert not h.state.pending and not h.state.view.where


# (case, how the job ended, its state)
ENDED = [
    ("killing a killed job again changes nothing", "kill", "killed"),
    ("killing a succeeded job changes nothing", "finish", "succeeded"),
    ("killing a failed job changes nothing", "fail", "failed"),
]


@pytest.mark.parametrize("case,how,state", ENDED, ids=[c[0] for c in ENDED])
def test_killing_an_ended_job_emits_nothing_and_answers_its_state(case, how, state):
    h = cell(1, 0)
    h.core.failover_machines = 1
    if how == "kill":
        h.run(Kill("web.alice"))
    elif how == "finish":
        report(h, "web", "finished", exit_code=0)
    else:
        report(h, "web", "failed", exit_code=1, failures=3)
    out = h.run(Kill("web.alice"))
    assert out.events == [] and out.effects == []
    assert out.reply == job_reply(h.state.jobs["web.alice"]) and out.reply["state"] == state


def test_killing_a_job_that_does_not_exist_is_not_found():
    h = Harness()
    with pytest.raises(AdmissionError) as err:
        h.run(Kill("nosuch.alice"))
    assert err.value.status == 404 and err.value.errors[0][0] == "job"


# (case, how prep stands, main's waiting reason, main's task state after a Tick and a round)
ORDERED = [
    ("a job after a pending job waits for it to succeed", "pending",
     "waiting for job prep to succeed (it is pending)", P),
    ("a job after a running job waits for it to succeed", "running",
     "waiting for job prep to succeed (it is running)", P),
    ("a job after a succeeded job is placed", "succeeded", None, R),
    ("a job after a killed job is rejected", "killed", "rejected", D),
    ("a job after a failed job is rejected", "failed", "rejected", D),
]


@pytest.mark.parametrize("case,prep,reason,after", ORDERED, ids=[c[0] for c in ORDERED])
def test_an_ordered_job_waits_starts_or_is_rejected_by_how_its_predecessor_stands(case, prep, reason, after):
    h = Harness()
    h.core.failover_machines = 1
    h.machine("m1", cpu="8")
    h.submit("prep")
    h.submit("main", after="prep")
    if prep != "pending":
        h.schedule()
    if prep == "succeeded":
        report(h, "prep", "finished", exit_code=0)
    elif prep == "killed":
        h.run(Kill("prep.alice"))
    elif prep == "failed":
        report(h, "prep", "failed", exit_code=2, failures=3)
    main = h.state.jobs["main.alice"]
    if reason == "rejected":
        task = h.task("main")
        assert task.state is D and task.history[-1].via == "reject"
        assert task.history[-1].note == f"job prep it waits for {prep}"
        assert main.state is JobState.KILLED and "main.alice" not in h.state.waiting
        return
    assert waiting_reason(h.state, main) == reason
    h.run(Tick())
    h.schedule()
    assert h.task("main").state is after


def test_a_waiting_tasks_reason_follows_its_predecessor_placed_in_the_same_round():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("prep")
    h.submit("main", after="prep")
    h.schedule()
    assert h.task("prep").state is R
    h.run(Tick())
    h.schedule()
    assert h.task("main").reason == "waiting for job prep to succeed (it is running)"


def test_a_job_whose_predecessor_is_gone_from_the_state_waits_naming_it():
    h = Harness()
    h.submit("prep")
    h.submit("main", after="prep")
    del h.state.jobs["prep.alice"]  # as after a purge of ended jobs
    assert waiting_reason(h.state, h.state.jobs["main.alice"]) == "waiting for job prep, which does not exist"


def test_a_job_without_after_never_waits():
    h = Harness()
    h.submit("web")
    assert waiting_reason(h.state, h.state.jobs["web.alice"]) is None


def test_killing_the_predecessor_rejects_the_dependent_in_the_same_step():
    h = Harness()
    h.submit("prep")
    h.submit("main", after="prep", tasks=2)
    out = h.run(Kill("prep.alice"))
    assert [(e.TYPE, getattr(e, "via", None)) for e in out.events] == [
        ("job_killed", None), ("task_ended", "reject"), ("task_ended", "reject")]
    assert h.state.jobs["main.alice"].state is JobState.KILLED


def test_job_reply_names_the_job_its_state_version_and_task_count():
    h = Harness()
    out = h.submit("web", tasks=3)
    assert out.reply == {"job": "web.alice", "name": "web", "user": "alice", "state": "pending", "version": 1,
                         "tasks": 3}


# (case, the names of a chain: the first, one after it, one after that)
CHAINS = [
    ("a chain of ordered jobs named in order is rejected at once", ("a", "b", "c")),
    ("a chain of ordered jobs named out of order is rejected at once", ("a", "b", "aa")),
]


@pytest.mark.parametrize("case,names", CHAINS, ids=[c[0] for c in CHAINS])
def test_killing_the_head_of_a_chain_rejects_the_whole_chain_in_one_step(case, names):
    h = Harness()
    first, second, third = names
    h.submit(first)
    h.submit(second, after=first)
    h.submit(third, after=second)
    out = h.run(Kill(f"{first}.alice"))
    assert [e.task for e in out.events if e.TYPE == "task_ended"] == [f"0.{second}.alice.local",
                                                                      f"0.{third}.alice.local"]
    assert h.state.jobs[f"{third}.alice"].state is JobState.KILLED
    assert h.task(third).history[-1].note == f"job {second} it waits for killed"



def _finished(h: Harness, job: str) -> None:
    h.schedule()
    report(h, job, "finished", exit_code=0)
    assert h.state.jobs[f"{job}.alice"].state is JobState.SUCCEEDED


def _refused_or_placed(h: Harness, submit, job: str) -> None:
    """The submission is either refused naming ``after`` or its task is placed: it never waits forever."""
    try:
        submit()
    except AdmissionError as err:
        assert err.status == 422 and err.errors[0][0] == "after"
        return
    h.run(Tick())
    h.schedule()
    assert h.task(job).state is R, h.task(job).reason


def test_a_job_submitted_again_after_its_own_succeeded_incarnation_does_not_wait_for_itself():
    h = Harness()
    h.machine("m1")
    h.submit("main")
    _finished(h, "main")
    _refused_or_placed(h, lambda: h.submit("main", after="main"), "main")


def test_a_predecessor_submitted_again_after_its_dependent_does_not_make_a_cycle():
    h = Harness()
    h.machine("m1", cpu="1")
    h.submit("b")
    _finished(h, "b")
    h.submit("a", after="b", cpu="2")  # b succeeded: a may run, once there is room
    _refused_or_placed(h, lambda: (h.submit("b", after="a"), h.machine("m2", cpu="4")), "a")
