"""Failover, lost machines and re-adoption."""

from __future__ import annotations

import pytest

from corral.master.commands import (AgentReport, KillTask, MachineDown, MachineUp, RegisterMachine, StartTask, Submit,
                                    Tick, Update)
from corral.master.failover import failed_machines, last_machine
from corral.master.lifecycle import Transition
from corral.model.job import JobState, TaskState

from tests.master.helpers import Harness, spec

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


def fail(h: Harness, job: str = "web", index: int = 0, error: str = "exit 1") -> object:
    task = h.task(job, index)
    return h.run(AgentReport(task.machine, [{"task_id": task.name, "generation": task.generation, "state": "failed",
                                             "last_error": error}]))


def test_a_failed_task_is_tried_on_another_machine_first():
    h = Harness()
    for m in ("m1", "m2"):
        h.machine(m)
    h.submit("web")
    h.schedule()
    first = h.task("web").machine
    out = fail(h)
    assert [(e.TYPE, e.via, e.machine) for e in out.events] == [("task_ended", "failover", first)]
    assert h.task("web").state is P and h.state.jobs["web.alice"].state is JobState.PENDING
    h.schedule()
    assert h.task("web").state is R and h.task("web").machine != first
    assert failed_machines(h.task("web").history) == [first]


# (case, machines, failover_machines, the note of the fail, how many machines it was tried on)
FAILS = [
    ("a task that failed on failover_machines machines fails with its job", ("m1", "m2", "m3"), 2, 2),
    ("a task that failed on every machine up fails with its job", ("m1", "m2"), 5, 2),
    ("a task on the only machine fails at once", ("m1",), 3, 1),
]


@pytest.mark.parametrize("case,machines,failover_machines,tries", FAILS, ids=[c[0] for c in FAILS])
def test_a_task_that_keeps_failing_fails_its_job_and_kills_the_rest(case, machines, failover_machines, tries):
    h = Harness()
    h.core.failover_machines = failover_machines
    for m in machines:
        h.machine(m, cpu="8")
    h.submit("web", tasks=2)
    h.schedule()
    tried = []
    for attempt in range(tries):
        tried.append(h.task("web").machine)
        out = fail(h, error="exit 127")
        if attempt < tries - 1:
            assert [e.via for e in out.events] == ["failover"]
            h.schedule()
    where = f"on {tries} machines ({', '.join(tried)})" if tries > 1 else f"on {tried[0]}"
    note = f"failed {where}; last error: exit 127"
    assert [(e.TYPE, getattr(e, "via", None)) for e in out.events] == [("task_ended", "fail"), ("job_failed", None)]
    assert out.events[0].note == note and out.events[1].note == f"task 0 {note}"
    other = h.task("web", 1)
    kills = [e for e in out.effects if isinstance(e, KillTask)]
    assert [(k.task, k.reason) for k in kills] == [(other.name, f"the job failed: task 0 {note}")]
    assert h.state.jobs["web.alice"].state is JobState.FAILED
    assert {t.state for t in h.state.tasks_of("web.alice")} == {D}
    assert [t.history[-1].via for t in h.state.tasks_of("web.alice")] == ["fail", "kill"]


# (case, lost_after_s, seconds of silence, whether the machine has an address, lost?)
SILENCE = [
    ("a machine silent longer than lost_after_s is lost", 10.0, 11, True, True),
    ("a machine silent exactly lost_after_s is not lost yet", 10.0, 10, True, False),
    ("a machine silent less than lost_after_s stays up", 10.0, 5, True, False),
    ("without lost_after_s no machine is ever lost by time", None, 10_000, True, False),
    ("a machine without an address (no agent to hear from) is never lost by time", 10.0, 10_000, False, False),
]


@pytest.mark.parametrize("case,lost_after_s,silent,address,lost", SILENCE, ids=[c[0] for c in SILENCE])
def test_a_machine_not_heard_from_is_lost_by_time(case, lost_after_s, silent, address, lost):
    h = Harness(lost_after_s=lost_after_s)
    h.run(RegisterMachine("m1", {"cpu": "4", "memory": "8Gi"}, address="http://m1" if address else ""))
    h.submit("web")
    h.schedule()
    h.clock.advance(silent)
    out = h.run(Tick())
    task = h.task("web")
    if lost:
        assert [e.TYPE for e in out.events] == ["machine_lost"] and out.events[0].machine == "m1"
        assert h.state.machines["m1"].state == "lost" and task.state is P
        assert task.history[-1].via == "lost" and task.reason == "its machine m1 stopped answering"
        assert h.core.failover.reschedule.held(task.name) == "m1"
    else:
        assert out.events == [] and task.state is R and h.state.machines["m1"].state == "up"


def test_a_machine_down_note_is_the_lost_tasks_reason_and_a_second_down_changes_nothing():
    h = Harness()
    h.machine("m1")
    h.submit("web")
    h.schedule()
    out = h.run(MachineDown("m1", note="rack r1 lost power"))
    assert [e.TYPE for e in out.events] == ["machine_lost"] and out.reply == {"machine": "m1", "state": "lost"}
    assert h.task("web").reason == "rack r1 lost power"
    assert h.run(MachineDown("m1")).events == []


def readopt_setup(condition: str):
    """A cell where web ran on m1 and m1 was lost; ``condition`` adds what may prevent re-adoption.
    Returns (harness, the reporting machine, the agent's status, command kind)."""
    h = Harness()
    gpu = condition == "a gpu job"
    capacity = {"cpu": "4", "memory": "8Gi", **({"gpu": 1} if gpu else {})}
    h.run(RegisterMachine("m1", capacity, address="http://m1"))
    resources = {"cpu": "1", "memory": "1Gi", **({"gpu": 1} if gpu else {})}
    h.run(Submit({"name": "web", "user": "alice", "tasks": 1, "resources": resources}))
    h.schedule()
    task = h.task("web")
    assert task.machine == "m1"
    h.run(RegisterMachine("m2", capacity, address="http://m2"))
    sent = {"task_id": task.name, "generation": task.generation, "state": "running"}
    h.run(MachineDown("m1"))
    machine, kind = "m1", "up"
    if condition == "placed elsewhere first":
        h.core.failover.reschedule.release()
        h.schedule()
        assert h.task("web").machine == "m2"
    elif condition == "another generation":
        sent["generation"] += 1
    elif condition == "an ended copy":
        sent["state"] = "finished"
    elif condition == "reported by another machine":
        machine, kind = "m2", "report"
    elif condition == "the machine is still down":
        kind = "report"
    elif condition == "its job was updated":
        h.run(Update(spec("web", memory="2Gi")))
    elif condition == "it no longer fits":
        h.run(RegisterMachine("m1", {"cpu": "500m", "memory": "8Gi"}, address="http://m1"))
        kind = "report"
    return h, machine, sent, kind


# (case, condition, re-adopted?)
READOPT = [
    ("a lost task its machine reports running again is taken back where it runs", "none", True),
    ("a lost task in backoff on its machine is taken back too", "backoff", True),
    ("a task placed elsewhere first is not taken back", "placed elsewhere first", False),
    ("a copy of another generation is not taken back", "another generation", False),
    ("a copy that ended is not taken back", "an ended copy", False),
    ("a copy reported by another machine is not taken back", "reported by another machine", False),
    ("a copy reported by a machine still down is not taken back", "the machine is still down", False),
    ("a task whose job was updated while it was lost is not taken back", "its job was updated", False),
    ("a task that no longer fits its returned machine is not taken back", "it no longer fits", False),
    ("a gpu task is not taken back (its gpus are not known)", "a gpu job", False),
]


@pytest.mark.parametrize("case,condition,readopted", READOPT, ids=[c[0] for c in READOPT])
def test_a_lost_task_is_readopted_only_when_nothing_changed(case, condition, readopted):
    h, machine, sent, kind = readopt_setup(condition)
    if condition == "backoff":
        sent["state"] = "backoff"
    generation = h.task("web").generation
    cmd = MachineUp(machine, [sent]) if kind == "up" else AgentReport(machine, [sent])
    out = h.run(cmd)
    task = h.task("web")
    scheduled = [e for e in out.events if e.TYPE == "task_scheduled"]
    if readopted:
        assert [(e.task, e.machine, e.generation) for e in scheduled] == [(task.name, "m1", generation)]
        assert task.state is R and task.machine == "m1" and task.generation == generation
        assert not any(isinstance(e, (StartTask, KillTask)) for e in out.effects)
        assert h.core.failover.reschedule.held(task.name) is None
    else:
        assert scheduled == []
        assert task.state is P or task.machine != machine
        kills = [e.task for e in out.effects if isinstance(e, KillTask)]
        # A live copy the master does not take back is killed by the full report; an ended one is not.
        assert kills == ([] if sent["state"] == "finished" else [task.name])


# (case, transitions (via, machine), failed machines, last machine)
HISTORIES = [
    ("a task that never ran failed nowhere", [("submit", None)], [], ""),
    ("a failover after a schedule counts the scheduled machine",
     [("submit", None), ("schedule", "m1"), ("failover", None)], ["m1"], "m1"),
    ("the failover's own machine wins over the schedule's",
     [("submit", None), ("schedule", "m1"), ("failover", "m2")], ["m2"], "m1"),
    ("each machine is counted once",
     [("submit", None), ("schedule", "m1"), ("failover", "m1"), ("schedule", "m1"), ("failover", "m1")],
     ["m1"], "m1"),
    ("a restart forgets the machines it failed on before",
     [("submit", None), ("schedule", "m1"), ("failover", "m1"), ("schedule", "m2"), ("restart", "m2"),
      ("schedule", "m3")], [], "m3"),
    ("a lost task still remembers where it failed",
     [("submit", None), ("schedule", "m1"), ("failover", "m1"), ("schedule", "m2"), ("lost", "m2")], ["m1"], "m2"),
]


@pytest.mark.parametrize("case,transitions,failed,last", HISTORIES, ids=[c[0] for c in HISTORIES])
def test_machines_are_read_from_transitions(case, transitions, failed, last):
    history = [Transition(i + 1, f"c{i}", via, None, "x", machine=machine) for i, (via, machine) in
               enumerate(transitions)]
    assert failed_machines(history) == failed
    assert last_machine(history) == last


def test_a_task_failing_for_good_kills_its_pending_siblings_without_a_kill_effect():
    h = Harness()
    h.core.failover_machines = 1
    h.machine("m1", cpu="1")
    h.submit("web", tasks=2)  # room for one
    h.schedule()
    out = fail(h, error="x")
    assert [(e.TYPE, getattr(e, "via", None)) for e in out.events] == [("task_ended", "fail"), ("job_failed", None)]
    assert out.effects == []
    sibling = h.task("web", 1)
    assert sibling.state is D and sibling.history[-1].via == "kill"
    assert sibling.history[-1].note == "task 0 failed on m1; last error: x"
    assert h.state.jobs["web.alice"].state is JobState.FAILED and not h.state.pending
