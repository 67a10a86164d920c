"""Every way a job can end, and what its state and reason say (corral.master.status)."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, Kill, Update
from corral.master.status import job_end_reason, task_detail, task_word
from corral.model.job import JobState

from tests.master.helpers import Harness, spec


def report(h, task, state, **fields):
    h.run(AgentReport(task.machine, [{"task_id": task.name, "generation": task.generation, "state": state,
                                      **fields}]))


def all_finish(h):
    h.submit("j", tasks=2)
    h.schedule()
    for i in range(2):
        report(h, h.task("j", i), "finished", exit_code=0)


def killed_by_user(h):
    h.submit("j", tasks=2)
    h.schedule()
    h.run(Kill("j.alice"))


def killed_while_pending(h):
    h.submit("j", tasks=2, cpu="64")
    h.schedule()
    h.run(Kill("j.alice"))


def fails_everywhere(h):
    h.core.failover_machines = 1
    h.submit("j", tasks=2)
    h.schedule()
    report(h, h.task("j", 0), "failed", exit_code=127, last_error='sh: foo: not found', failures=3)


def predecessor_failed(h):
    h.core.failover_machines = 1
    h.submit("prep")
    h.submit("j", after="prep")
    h.schedule()
    report(h, h.task("prep"), "failed", exit_code=1, last_error="exit code 1", failures=3)


def scaled_down_to_finished_tasks(h):
    h.submit("j", tasks=2, cpu="3")  # one fits; the other waits
    h.schedule()
    report(h, h.task("j", 0), "finished", exit_code=0)
    h.run(Update(spec("j", tasks=1, cpu="3")))


CASES = [
    ("every task finished: succeeded", all_finish, JobState.SUCCEEDED, "every task succeeded", "succeeded"),
    ("its user killed it while it ran: killed", killed_by_user, JobState.KILLED, "killed by its user", "killed"),
    ("its user killed it before it ran: killed", killed_while_pending, JobState.KILLED, "killed by its user", "killed"),
    ("a task failed on every machine it may try: failed, with the task and its last error", fails_everywhere,
     JobState.FAILED, "task 0 failed on m1; last error: sh: foo: not found", "failed"),
    ("the job it waits for failed: killed (rejected), with why", predecessor_failed, JobState.KILLED,
     "job prep it waits for failed", "killed"),
    ("scaled down to the tasks that already finished: succeeded", scaled_down_to_finished_tasks,
     JobState.SUCCEEDED, "every task succeeded", "succeeded"),
]


@pytest.mark.parametrize("name,story,state,reason,task0", CASES, ids=[c[0] for c in CASES])
def test_how_a_job_ended_is_its_state_and_its_reason(name, story, state, reason, task0):
    h = Harness()
    h.machine("m1")
    story(h)
    job = h.state.jobs["j.alice"]
    assert job.state is state and job.state.ended
    assert job_end_reason(job) == reason
    assert task_word(h.task("j", 0)) == task0


def test_a_job_that_lives_has_no_end_reason():
    h = Harness()
    h.machine("m1")
    h.submit("j")
    assert job_end_reason(h.state.jobs["j.alice"]) == ""
    h.schedule()
    assert job_end_reason(h.state.jobs["j.alice"]) == ""


def test_a_task_its_agent_restarts_after_a_back_off_says_restarting_with_the_last_exit():
    h = Harness()
    h.machine("m1")
    h.submit("j", command="foo")
    h.schedule()
    task = h.task("j")
    assert task_word(task) == "starting"  # placed; its agent has not reported it yet
    report(h, task, "backoff", exit_code=127, last_error="sh: foo: not found", failures=4, restarts=4,
           restart_in_s=8.0)
    assert task_word(task) == "restarting"
    assert task_detail(task, h.clock.now()) == 'restarting: 4 restarts, next try in 8 s, last: exit 127 "sh: foo: not found"'
    h.clock.advance(5)
    assert "next try in 3 s" in task_detail(task, h.clock.now())
    report(h, task, "running", exit_code=None, last_error="sh: foo: not found", failures=4, restarts=5)
    assert task_word(task) == "running"
    assert task_detail(task, h.clock.now()) == 'running: 5 restarts, last: "sh: foo: not found"'
