"""Agent reports, full and partial: each status judged by its generation and where the master has the task."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, KillTask, MachineDown
from corral.master.errors import AdmissionError
from corral.model.job import JobState, TaskState

from tests.master.helpers import Harness

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
TASK = "0.web.alice.local"


def placed(machines: tuple[str, ...] = ("m1", "m2"), failover_machines: int = 3) -> Harness:
    h = Harness()
    h.core.failover_machines = failover_machines
    for m in machines:
        h.machine(m)
    h.submit("web")
    h.schedule()
    assert h.task("web").state is R and h.task("web").machine == "m1"
    return h


def status(h: Harness, state: str, generation: int | None = None, **fields) -> dict:
    task = h.task("web")
    return {"task_id": task.name, "generation": task.generation if generation is None else generation,
            "state": state, **fields}


# (case, the agent's status, the events (type, via), the task's state, its last transition's note)
STATUSES = [
    ("a finished task ends and its job succeeds", {"state": "finished", "exit_code": 0},
     [("task_ended", "finish")], D, "exit code 0", JobState.SUCCEEDED),
    ("a failed task fails over to another machine", {"state": "failed", "exit_code": 1, "failures": 5},
     [("task_ended", "failover")], P, "failed on m1: exit code 1 after 5 failures; it will be tried on another machine",
     JobState.PENDING),
    ("a failed task with its last error fails over naming it", {"state": "failed", "last_error": "oom"},
     [("task_ended", "failover")], P, "failed on m1: oom; it will be tried on another machine", JobState.PENDING),
    ("a task killed on its machine goes back to pending", {"state": "killed"},
     [("task_ended", "evict")], P, "killed on its machine", JobState.PENDING),
    ("a task killed on its machine with an error keeps the error", {"state": "killed", "last_error": "cgroup oom"},
     [("task_ended", "evict")], P, "cgroup oom", JobState.PENDING),
    ("a running status changes nothing durable", {"state": "running"}, [], R, "on m1", JobState.RUNNING),
    ("a backoff status changes nothing durable", {"state": "backoff", "restarts": 2, "restart_in_s": 4},
     [], R, "on m1", JobState.RUNNING),
]


@pytest.mark.parametrize("case,fields,events,state,note,job", STATUSES, ids=[c[0] for c in STATUSES])
def test_a_status_of_the_current_generation_counts(case, fields, events, state, note, job):
    h = placed()
    out = h.run(AgentReport("m1", [status(h, **fields)]))
    assert [(e.TYPE, getattr(e, "via", None)) for e in out.events] == events
    assert all(e.machine == "m1" for e in out.events)
    task = h.task("web")
    assert task.state is state and task.history[-1].note == note
    assert h.state.jobs["web.alice"].state is job
    assert out.effects == [] and out.reply == {"machine": "m1", "tasks": 1}


# (case, full, the agent's fields)
BACKOFF = [
    ("a full report's backoff sets when the agent tries again", True, {"restart_in_s": 8}, 1008.0),
    ("a partial report's backoff sets when the agent tries again", False, {"restart_in_s": 2.5}, 1002.5),
    ("a backoff without restart_in_s leaves the next try unknown", True, {}, None),
]


@pytest.mark.parametrize("case,full,fields,next_try", BACKOFF, ids=[c[0] for c in BACKOFF])
def test_a_backoff_status_is_kept_on_the_task_with_its_next_try(case, full, fields, next_try):
    h = placed()
    h.run(AgentReport("m1", [], incarnation="a1"))
    sent = status(h, "backoff", restarts=4, exit_code=127, **fields)
    h.run(AgentReport("m1", [sent], incarnation="a1", full=full))
    task = h.task("web")
    assert task.agent == sent and task.agent_next_try_at == next_try
    h.run(AgentReport("m1", [status(h, "running", restarts=4)], incarnation="a1", full=full))
    assert task.agent["state"] == "running" and task.agent_next_try_at is None


# (case, the status of another generation or place)
IGNORED = [
    ("a finished status of an older generation is ignored", {"state": "finished", "generation": 0}),
    ("a failed status of a newer generation is ignored", {"state": "failed", "generation": 7}),
    ("a killed status of an older generation is ignored", {"state": "killed", "generation": 0}),
    ("a running status of an older generation is not kept", {"state": "running", "generation": 0}),
]


@pytest.mark.parametrize("case,fields", IGNORED, ids=[c[0] for c in IGNORED])
def test_a_status_of_the_wrong_generation_changes_nothing(case, fields):
    h = placed()
    before = h.state.to_dict()
    out = h.run(AgentReport("m1", [status(h, **fields)]))
    assert out.events == [] and out.effects == []
    assert h.state.to_dict() == before and h.task("web").agent is None


# (case, the reporting machine, full, the task id, its agent state, killed?)
STRAYS = [
    ("a full report kills a running copy of a task the master has elsewhere", "m2", True, TASK, "running", True),
    ("a full report kills a copy of a task the master does not know", "m1", True, "0.ghost.bob.local", "starting",
     True),
    ("a full report kills a copy in backoff the master has elsewhere", "m2", True, TASK, "backoff", True),
    ("a full report does not kill an ended copy: nothing is left to kill", "m2", True, TASK, "finished", False),
    ("a partial report kills no stray copy", "m2", False, TASK, "running", False),
    ("a partial report kills no unknown task", "m1", False, "0.ghost.bob.local", "running", False),
]


@pytest.mark.parametrize("case,machine,full,name,agent_state,killed", STRAYS, ids=[c[0] for c in STRAYS])
def test_a_stray_copy_is_killed_by_a_full_report_only(case, machine, full, name, agent_state, killed):
    h = placed()
    out = h.run(AgentReport(machine, [{"task_id": name, "generation": 1, "state": agent_state}], full=full))
    assert out.events == []
    kills = [e for e in out.effects if isinstance(e, KillTask)]
    assert [(k.task, k.machine, k.reason) for k in kills] == (
        [(name, machine, "not assigned to this machine")] if killed else [])
    assert h.task("web").state is R and h.task("web").machine == "m1"


def test_a_partial_report_from_a_lost_machine_is_ignored():
    h = placed()
    h.run(AgentReport("m1", [], incarnation="a1"))
    h.run(MachineDown("m1"))
    out = h.run(AgentReport("m1", [status(h, "finished", generation=1)], incarnation="a1", full=False))
    assert out.events == [] and out.reply == {"machine": "m1", "tasks": 0, "applied": False}
    assert h.task("web").state is P


def test_a_partial_report_from_an_old_agent_incarnation_is_ignored():
    h = placed()
    h.run(AgentReport("m1", [], incarnation="a2"))
    before = h.state.to_dict()
    out = h.run(AgentReport("m1", [status(h, "finished")], incarnation="a1", full=False))
    assert out.events == [] and out.reply["applied"] is False and h.state.to_dict() == before


def test_a_partial_report_does_not_count_as_hearing_from_the_machine_but_a_full_one_does():
    h = placed()
    h.run(AgentReport("m1", [], incarnation="a1"))
    seen = h.state.machines["m1"].last_seen
    h.clock.advance(30)
    h.run(AgentReport("m1", [status(h, "running")], incarnation="a1", full=False))
    assert h.state.machines["m1"].last_seen == seen
    h.run(AgentReport("m1", [status(h, "running")], incarnation="a2"))
    assert h.state.machines["m1"].last_seen == seen + 30 and h.state.machines["m1"].incarnation == "a2"


def test_a_report_from_a_machine_never_registered_is_not_found():
    h = placed()
    with pytest.raises(AdmissionError) as err:
        h.run(AgentReport("m9", []))
    assert err.value.status == 404 and err.value.errors[0][0] == "machine"


def test_the_same_finished_status_twice_ends_the_task_once():
    h = placed()
    sent = status(h, "finished", exit_code=0)
    assert len(h.run(AgentReport("m1", [sent])).events) == 1
    assert h.run(AgentReport("m1", [sent])).events == []
