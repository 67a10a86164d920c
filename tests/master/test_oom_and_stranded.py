"""OOM kills counted per task from its agents' reports, and tasks with no machine left to fail over to."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, RegisterMachine, Tick
from corral.master.health import oom_count, oom_line
from corral.master.status import task_detail
from corral.master.views import task_view, why_view
from corral.model.job import JobState, TaskState

from tests.master.helpers import Harness

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
MI64 = 64 * 2**20


def status(task, state: str = "backoff", oom: int = 0, **more) -> dict:
    return {"task_id": task.name, "generation": task.generation, "state": state, "oom_kills": oom,
            "memory_limit": MI64, "failures": oom, "last_error": "killed by SIGKILL (killed by the kernel OOM "
                                                                  "killer at its memory limit of 64Mi)", **more}


# (case, the reports: (machine, state, oom_kills) for the task's placement of the moment, the count)
COUNTS = [
    ("one OOM kill is one", [("m1", "backoff", 1)], 1),
    ("the same count reported again is not counted twice", [("m1", "backoff", 1), ("m1", "running", 1)], 1),
    ("the agent's count rises across its restarts", [("m1", "backoff", 1), ("m1", "backoff", 2)], 2),
    ("counts on two machines add up", [("m1", "failed", 2), ("m2", "backoff", 1)], 3),
    ("no OOM kill is none", [("m1", "running", 0)], 0),
]


@pytest.mark.parametrize("case,reports,count", COUNTS, ids=[c[0] for c in COUNTS])
def test_the_master_counts_a_tasks_oom_kills_across_restarts_and_machines(case, reports, count):
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("hog", memory="64Mi")
    h.schedule()
    h.machine("m2", cpu="4")
    task = h.task("hog")
    for machine, state, kills in reports:
        assert task.machine == machine, task.history
        h.run(AgentReport(machine, [status(task, state, kills)]))
        if state == "failed":
            h.schedule()  # failed over: placed again, on the other machine
    assert oom_count(task) == count
    line = oom_line(task)
    if count:
        assert line == f"killed at its memory limit 64Mi, {count} time{'s' if count > 1 else ''}"
        assert line in task_detail(task, 0.0) and line in why_view(task, 0.0).summary
        assert task_view(h.state, task, 0.0).oom_kills == count
    else:
        assert line == "" and "killed at" not in why_view(task, 0.0).summary


def test_a_report_of_an_older_generation_counts_nothing():
    h = Harness()
    h.machine("m1")
    h.submit("hog", memory="64Mi")
    h.schedule()
    task = h.task("hog")
    h.run(AgentReport("m1", [{**status(task, "running", 3), "generation": task.generation - 1}]))
    assert oom_count(task) == 0


# (case, the other machine (capacity and attributes), the job's extra fields, the task after it fails on m1,
#  words the job's reason holds)
ELSEWHERE = [
    ("another machine that fits: the task fails over", dict(cpu="4", memory="8Gi"), {}, P, None),
    ("another machine too small: the job fails at once", dict(cpu="4", memory="512Mi"), {}, D,
     "no machine it has not failed on can run it (m2: too little memory, 1Gi asked, 512Mi there)"),
    ("another machine without the constrained attribute: the job fails at once",
     dict(cpu="4", memory="8Gi", rack="r2"), {"constraints": ["rack == r1"]}, D,
     "(m2: constraint rack==r1 not met)"),
]


@pytest.mark.parametrize("case,other,fields,after,words", ELSEWHERE, ids=[c[0] for c in ELSEWHERE])
def test_a_failed_task_with_no_machine_left_fails_its_job_with_the_reason(case, other, fields, after, words):
    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi", rack="r1")
    h.submit("web", **fields)
    h.schedule()
    cpu, memory = other.pop("cpu"), other.pop("memory")
    h.machine("m2", cpu=cpu, memory=memory, **other)
    task = h.task("web")
    h.run(AgentReport("m1", [{"task_id": task.name, "generation": task.generation, "state": "failed",
                              "exit_code": 1, "failures": 3, "last_error": "exit code 1"}]))
    job = h.state.jobs["web.alice"]
    assert task.state is after
    if words is None:
        assert job.state is JobState.PENDING and task.history[-1].via == "failover"
    else:
        assert job.state is JobState.FAILED
        assert words in job.history[-1].note and "last error: exit code 1" in job.history[-1].note


def test_a_failed_over_task_whose_last_possible_machine_shrinks_fails_at_the_next_tick():
    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi")
    h.submit("web")
    h.schedule()
    h.machine("m2", cpu="4", memory="8Gi")
    h.machine("m3", cpu="4", memory="8Gi")
    h.run(RegisterMachine("m3", {"cpu": "4", "memory": "256Mi"}, address="http://m3"))
    task = h.task("web")
    h.run(AgentReport("m1", [{"task_id": task.name, "generation": task.generation, "state": "failed",
                              "exit_code": 1, "failures": 3, "last_error": "exit code 1"}]))
    assert task.state is P  # m2 could run it
    h.run(RegisterMachine("m2", {"cpu": "0.5", "memory": "8Gi"}, address="http://m2"))  # re-registered smaller
    assert task.state is P
    h.run(Tick())
    job = h.state.jobs["web.alice"]
    assert task.state is D and job.state is JobState.FAILED
    assert job.history[-1].note == ("task 0 failed on m1; no machine it has not failed on can run it "
                                    "(m2: too little cpu, 1000m asked, 500m there; m3: too little memory, 1Gi asked, "
                                    "256Mi there)")
