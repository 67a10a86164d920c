"""Health-gated rolling updates: not-yet-healthy tasks count as unavailable, failed new tasks pause
the rollout, and a rollback (on request or after N failed tasks) returns to the previous spec."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, Kill, Rollback, StartTask, Submit, Tick, Update
from corral.master.errors import AdmissionError
from corral.master.rollout import rollout_view
from corral.master.views import task_view
from corral.model.job import TaskState

from tests.master.helpers import Harness, spec

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
CHECK = {"command": ["true"], "interval_s": 1.0}


def job_spec(tasks: int = 3, memory: str = "1Gi", **fields):
    return spec("web", tasks=tasks, memory=memory, health_check=CHECK, **fields)


def running(tasks: int = 3, **fields) -> Harness:
    """A job of ``tasks`` tasks with a health check, every one running and reported healthy."""
    h = Harness()
    h.machine("m1", cpu="16", memory="64Gi")
    h.run(Submit(job_spec(tasks, **fields)))
    h.schedule()
    report(h, {i: True for i in range(tasks)})
    return h


def report(h: Harness, health: dict[int, bool | None], failures: dict[int, int] | None = None,
           error: str = "") -> object:
    """The agent on m1 reports tasks (by index) running with this health."""
    statuses = []
    for index, healthy in health.items():
        task = h.task("web", index)
        statuses.append({"task_id": task.name, "generation": task.generation, "state": "running", "pid": 100 + index,
                         "healthy": healthy, "failures": (failures or {}).get(index, 0), "last_error": error})
    return h.run(AgentReport("m1", statuses))


def restarted(out) -> list[int]:
    return sorted(int(e.task.split(".")[0]) for e in out.events if e.TYPE == "task_ended" and e.via == "restart")


def started(out) -> list[int]:
    return sorted(int(e.task.split(".")[0]) for e in out.effects if isinstance(e, StartTask))


def roll_one(h: Harness) -> list[int]:
    """Place what the rollout restarted; the indexes placed."""
    return started(h.schedule())


def test_the_master_sends_the_health_check_with_the_launch():
    h = Harness()
    h.machine("m1", cpu="16", memory="64Gi")
    h.submit("web", health_check={"http": "http://127.0.0.1:8080/healthz", "failures": 2, "initial_delay_s": 5})
    (start,) = [e for e in h.schedule().effects if isinstance(e, StartTask)]
    assert start.launch["health_check"] == {"http": "http://127.0.0.1:8080/healthz", "command": None,
                                            "interval_s": 10.0, "timeout_s": 5.0, "failures": 2,
                                            "initial_delay_s": 5.0}
    h.submit("plain")
    assert "health_check" not in h.core.launch(h.task("plain").name)


def test_a_restarted_task_counts_as_unavailable_until_its_agent_reports_it_healthy():
    h = running(3)
    out = h.run(Update(job_spec(3, memory="2Gi"), max_unavailable=1))
    assert restarted(out) == [0]
    assert roll_one(h) == [0]
    # Placed and running, but not yet healthy: it is still one of max_unavailable.
    assert restarted(h.run(Tick())) == []
    assert restarted(report(h, {0: None})) == []
    assert task_view(h.state, h.task("web", 0), 0.0).health == "not yet healthy"
    assert task_view(h.state, h.task("web", 1), 0.0).health == "healthy"
    # Healthy: the report itself lets the next one roll.
    assert restarted(report(h, {0: True})) == [1]
    view = rollout_view(h.state, h.state.jobs["web.alice"])
    assert view["state"] == "rolling" and view["updated"] == 1 and view["tasks"] == 3 and view["version"] == 2


# (case, what the agent reports of the new task 0, the auto_rollback_after of the new spec,
#  the rollout's state after, words its reason holds)
FAILURES = [
    ("an unhealthy new task pauses the rollout", dict(healthy=False), None, "paused", "task 0 of version 2 failed"),
    ("a new task its agent restarted after a failure pauses the rollout", dict(healthy=None, failures=1), None,
     "paused", "exit 1"),
    ("one failed task with auto_rollback_after 2 only pauses", dict(healthy=False), 2, "paused", "task 0"),
    ("one failed task with auto_rollback_after 1 rolls back", dict(healthy=False), 1, "rolled back",
     "1 task of version 2 failed (auto_rollback_after: 1); task 0"),
]


@pytest.mark.parametrize("case,news,limit,after,words", FAILURES, ids=[c[0] for c in FAILURES])
def test_a_failing_new_task_pauses_the_rollout_or_rolls_it_back(case, news, limit, after, words):
    h = running(3)
    update = {"update": {"auto_rollback_after": limit}} if limit else {}
    h.run(Update(job_spec(3, memory="2Gi", **update), max_unavailable=1))
    assert roll_one(h) == [0]
    out = report(h, {0: news["healthy"]}, {0: news.get("failures", 0)}, error="exit 1")
    job = h.state.jobs["web.alice"]
    view = rollout_view(h.state, job)
    assert view["state"] == after and words in view["reason"], view
    if after == "paused":
        assert restarted(out) == [] and restarted(h.run(Tick())) == []
        assert view["failed"] == [0] and job.version == 2
        assert {t.version for t in h.state.tasks_of(job.id)} == {1, 2}
    else:
        # Back to the first spec as version 3: tasks 1 and 2 run it already and keep running (same
        # generation, no restart); task 0, on the failed version, is restarted.
        assert job.version == 3 and job.spec.resources.memory == 2**30 and job.rollback
        updated = [e for e in out.events if e.TYPE == "job_updated"]
        assert len(updated) == 1 and updated[0].rollback.startswith("1 task of version 2 failed")
        assert restarted(out) == [0]
        assert [(t.index, t.version, t.state) for t in h.state.tasks_of(job.id)] == [(0, 3, P), (1, 3, R), (2, 3, R)]
        assert "web.alice" not in h.state.rolling and view["updated"] == 2  # task 0 waits to be placed
        assert roll_one(h) == [0]
        report(h, {0: True, 1: True, 2: True})
        assert rollout_view(h.state, job)["updated"] == 3


def test_a_failover_of_a_new_task_pauses_the_rollout():
    h = running(2)
    h.machine("m2", cpu="16", memory="64Gi")
    h.run(Update(job_spec(2, memory="2Gi"), max_unavailable=1))
    roll_one(h)
    task = h.task("web", 0)
    h.run(AgentReport(task.machine, [{"task_id": task.name, "generation": task.generation, "state": "failed",
                                      "exit_code": 3, "failures": 5, "last_error": "exit code 3"}]))
    assert task.state is P and task.history[-1].via == "failover"
    view = rollout_view(h.state, h.state.jobs["web.alice"])
    assert view["state"] == "paused" and "exit code 3" in view["reason"]
    assert restarted(h.run(Tick())) == []


def test_a_rollback_on_request_returns_to_the_previous_spec_and_keeps_its_tasks_running():
    h = running(3)
    h.run(Update(job_spec(3, memory="2Gi"), max_unavailable=1))
    roll_one(h)
    report(h, {0: True})  # task 1 restarts on version 2 too
    roll_one(h)
    before = {t.index: t.generation for t in h.state.tasks_of("web.alice")}
    out = h.run(Rollback("web.alice"))
    job = h.state.jobs["web.alice"]
    assert out.reply["rollback"] == "rolled back by its user" and out.reply["version"] == 3
    assert job.spec.resources.memory == 2**30
    # Task 2 never left version 1's spec: it keeps running. Tasks 0 and 1 ran version 2: task 1, not
    # yet healthy, goes first (it is down already), then task 0 once task 1 is back and healthy.
    assert restarted(out) == [1] and h.task("web", 2).state is R and h.task("web", 2).version == 3
    assert h.task("web", 2).generation == before[2]
    view = rollout_view(h.state, job)
    assert view["state"] == "rolling back" and view["reason"] == "rolled back by its user"
    assert roll_one(h) == [1]
    assert restarted(report(h, {1: True, 2: True})) == [0]
    roll_one(h)
    report(h, {0: True})
    assert {(t.version, t.state) for t in h.state.tasks_of(job.id)} == {(3, R)}
    assert rollout_view(h.state, job)["state"] == "rolled back"
    # A normal update afterwards clears it.
    h.run(Update(job_spec(3, memory="1Gi", priority=3)))
    assert rollout_view(h.state, job) is None


# (case, how the job came to be, status, field)
REFUSED = [
    ("a job never updated has nothing to roll back to", lambda h: None, 409, "job"),
    ("an unknown job is not found", lambda h: None, 404, "job"),
    ("an ended job cannot be rolled back", lambda h: h.run(Kill("web.alice")), 409, "job"),
]


@pytest.mark.parametrize("case,setup,status,field", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_rollback_that_cannot_be_is_refused_naming_the_job(case, setup, status, field):
    h = running(1)
    setup(h)
    with pytest.raises(AdmissionError) as e:
        h.run(Rollback("nosuch.alice" if status == 404 else "web.alice"))
    assert e.value.status == status and [f for f, _ in e.value.errors] == [field]


def test_a_change_of_the_update_section_alone_happens_in_place():
    h = running(2)
    out = h.run(Update(job_spec(2, update={"auto_rollback_after": 3})))
    assert out.reply["restart"] is False and restarted(out) == []


def test_the_rollout_state_is_the_same_after_a_restart_from_the_log():
    h = running(3)
    h.run(Update(job_spec(3, memory="2Gi", update={"auto_rollback_after": 2}), max_unavailable=1))
    roll_one(h)
    h.run(Rollback("web.alice"))
    from tests.master.test_core import replayed

    rebuilt = replayed(h)
    assert rebuilt.to_dict() == h.state.to_dict()
    job = rebuilt.jobs["web.alice"]
    assert job.rollback == "rolled back by its user" and job.previous_spec["resources"]["memory"] == 2 * 2**30
