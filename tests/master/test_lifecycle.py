"""The transition tables: every allowed transition and a selection of impossible ones."""

from __future__ import annotations

import pytest

from corral.model.job import JobState, TaskState
from corral.master.lifecycle import (JOB_TRANSITIONS, TASK_TRANSITIONS, Transition, TransitionError,
                                     check_job_transition, next_task_state)

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD

TASK_CASES = [
    ("a submitted task starts pending", None, "submit", P),
    ("a pending task that is placed runs", P, "schedule", R),
    ("a pending task whose job is updated stays pending", P, "update", P),
    ("a pending task whose job is killed dies", P, "kill", D),
    ("a pending task whose predecessor job failed is rejected", P, "reject", D),
    ("a running task that is preempted goes back to pending", R, "evict", P),
    ("a running task whose machine is lost goes back to pending", R, "lost", P),
    ("a running task its agent gave up on goes back to pending to try another machine", R, "failover", P),
    ("a running task whose priority changes keeps running", R, "update", R),
    ("a running task whose resources change is restarted through pending", R, "restart", P),
    ("a running task that exits cleanly is dead", R, "finish", D),
    ("a running task that keeps failing is dead", R, "fail", D),
    ("a running task whose job is killed dies", R, "kill", D),
]


@pytest.mark.parametrize("name,start,via,end", TASK_CASES, ids=[c[0] for c in TASK_CASES])
def test_task_transition(name, start, via, end):
    assert next_task_state("0.j.u.c", start, via, []) is end


def test_every_listed_case_is_in_the_task_table():
    listed = {(s, v): e for _, s, v, e in TASK_CASES}
    assert {k: TASK_TRANSITIONS.get(k) for k in listed} == listed


IMPOSSIBLE = [
    ("a dead task cannot be scheduled", D, "schedule"),
    ("a dead task cannot be killed again", D, "kill"),
    ("a pending task cannot finish", P, "finish"),
    ("a pending task cannot be evicted", P, "evict"),
    ("a running task cannot be scheduled again", R, "schedule"),
    ("a task cannot be submitted twice", P, "submit"),
]


@pytest.mark.parametrize("name,start,via", IMPOSSIBLE, ids=[c[0] for c in IMPOSSIBLE])
def test_an_impossible_task_transition_raises_with_the_story(name, start, via):
    history = [Transition(1, "cmd-1", "submit", None, "pending"), Transition(2, "cmd-2", "schedule", "pending", "running")]
    with pytest.raises(TransitionError) as err:
        next_task_state("0.web.alice.local", start, via, history)
    text = str(err.value)
    assert f"--{via}-->" in text and "0.web.alice.local" in text
    assert "#2 pending --schedule--> running (command cmd-2)" in text


JP, JR = JobState.PENDING, JobState.RUNNING
JS, JF, JK = JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED
JOB_CASES = [
    ("a submitted job starts pending", None, JP, "submit", True),
    ("a job runs once one of its tasks is placed", JP, JR, "schedule", True),
    ("a job whose last running task finished while others wait is pending again", JR, JP, "finish", True),
    ("a job whose tasks all finished has succeeded", JR, JS, "finish", True),
    ("a killed pending job is killed", JP, JK, "kill", True),
    ("a job whose predecessor failed is rejected (killed)", JP, JK, "reject", True),
    ("a running job whose task failed for good has failed", JR, JF, "fail", True),
    ("a running job whose tasks are preempted is pending", JR, JP, "evict", True),
    ("a running job whose only task fails over to another machine is pending", JR, JP, "failover", True),
    ("a task failing over cannot end its job", JR, JF, "failover", False),
    ("a pending job cannot finish", JP, JS, "finish", False),
    ("an ended job cannot run", JS, JR, "schedule", False),
    ("a killed job cannot become pending again", JK, JP, "update", False),
    ("scheduling cannot make a running job pending", JR, JP, "schedule", False),
]


@pytest.mark.parametrize("name,old,new,via,allowed", JOB_CASES, ids=[c[0] for c in JOB_CASES])
def test_job_transition(name, old, new, via, allowed):
    if allowed:
        check_job_transition("web.alice", old, new, via, [])
    else:
        with pytest.raises(TransitionError, match="job web.alice"):
            check_job_transition("web.alice", old, new, via, [])


def test_every_job_transition_in_the_table_is_reachable_by_name():
    vias = {v for vs in JOB_TRANSITIONS.values() for v in vs}
    assert vias <= {v for (_, v) in TASK_TRANSITIONS}
