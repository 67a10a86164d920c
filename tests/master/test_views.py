"""The views of jobs, tasks, machines and the cell, over a real core on a manual clock (no HTTP)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from corral.master.commands import AgentReport, Kill
from corral.master.errors import AdmissionError
from corral.master import views
from corral.master.responses import ExitInfo
from tests.master.helpers import Harness

NAME = "0.web.alice.local"


def cell(machines: int = 1, tasks: int = 1) -> Harness:
    """A harness with ``machines`` machines and job web.alice of ``tasks`` tasks, scheduled."""
    h = Harness()
    for i in range(machines):
        h.machine(f"m{i + 1}")
    h.submit("web", tasks=tasks)
    h.schedule()
    return h


def reported(h: Harness, name: str = NAME, generation_offset: int = 0, **status: Any) -> None:
    """What the core keeps of an agent's last status of a task (``TaskRecord.agent``)."""
    task = h.state.tasks[name]
    task.agent = {"task_id": name, "generation": task.generation + generation_offset, "state": "running",
                  "restarts": 0, **status}


def ended(h: Harness, state: str, **status: Any) -> None:
    """The task's agent reports it ended (``finished`` or ``failed``)."""
    task = h.state.tasks[NAME]
    h.run(AgentReport(task.machine, [{"task_id": NAME, "generation": task.generation, "state": state, **status}]))


def restarting(h: Harness) -> None:
    reported(h, state="backoff", restarts=4, exit_code=127, last_error="sh: foo: not found")
    h.state.tasks[NAME].agent_next_try_at = h.clock.now() + 8


TASKS: list[tuple[str, Callable[[], Harness], dict[str, Any]]] = [
    ("a task no machine can hold is pending with the scheduler's reason and no ports",
     lambda: cell(machines=0),
     {"state": "pending", "detail": "", "restarts": 0, "last_exit": None, "machine": None, "ports": [],
      "reason": "0/0 machines are available: the cell has no machines up."}),
    ("a placed task its agent has not reported yet is starting on its machine",
     lambda: cell(),
     {"state": "starting", "detail": "starting on m1", "machine": "m1", "address": "http://m1", "last_exit": None}),
    ("a task its agent runs is running, with nothing more to say",
     lambda: _with(cell(), reported),
     {"state": "running", "detail": "", "restarts": 0, "last_exit": None}),
    ("a task its agent restarts after a failure is restarting, with its restarts, next try and last exit",
     lambda: _with(cell(), restarting),
     {"state": "restarting", "restarts": 4, "last_exit": ExitInfo(code=127, error="sh: foo: not found"),
      "detail": 'restarting: 4 restarts, next try in 8 s, last: exit 127 "sh: foo: not found"'}),
    ("a report of an earlier placement says nothing of this one: starting, no restarts, no exit",
     lambda: _with(cell(), lambda h: reported(h, generation_offset=-1, restarts=3, exit_code=1)),
     {"state": "starting", "restarts": 0, "last_exit": None}),
    ("a task whose process exited 0 succeeded and has no ports any more",
     lambda: _with(cell(), lambda h: ended(h, "finished", exit_code=0)),
     {"state": "succeeded", "detail": "", "ports": []}),
    ("a task its agent gave up on, on the only machine, failed with the agent's error in its detail",
     lambda: _with(cell(), lambda h: ended(h, "failed", exit_code=2, last_error="exit code 2", failures=3)),
     {"state": "failed"}),
    ("a task of a killed job is killed",
     lambda: _with(cell(), lambda h: h.run(Kill("web.alice"))),
     {"state": "killed"}),
]


def _with(h: Harness, change: Callable[[Harness], Any]) -> Harness:
    change(h)
    return h


@pytest.mark.parametrize("case,make,expected", TASKS, ids=[t[0] for t in TASKS])
def test_a_task_view_says_in_words_what_the_task_does(case, make, expected):
    h = make()
    view = views.task_view(h.state, h.state.tasks[NAME], h.clock.now())
    assert {k: getattr(view, k) for k in expected} == expected
    assert (view.name, view.job, view.user, view.index) == (NAME, "web.alice", "alice", 0)


def test_a_failed_task_says_why_in_its_detail_and_its_reason():
    h = cell()
    ended(h, "failed", exit_code=2, last_error="boom", failures=3)
    view = views.task_view(h.state, h.state.tasks[NAME], h.clock.now())
    assert view.detail.startswith("failed: ") and "boom" in view.detail and "boom" in view.reason


def test_a_task_detail_adds_its_transitions_in_order():
    h = cell()
    detail = views.task_detail_view(h.state, h.state.tasks[NAME], h.clock.now())
    assert [(t.via, t.from_, t.to) for t in detail.history] == [("submit", None, "pending"),
                                                                 ("schedule", "pending", "running")]
    assert detail.model_dump()["history"][0]["from"] is None, "the transition's 'from' keeps its name"


def test_a_job_counts_its_tasks_by_word_and_dead_sums_the_ended_ones():
    h = cell(tasks=3)
    reported(h, "0.web.alice.local")
    restarting_name = "1.web.alice.local"
    reported(h, restarting_name, state="backoff", restarts=1)
    summary = views.job_summary(h.state, h.state.jobs["web.alice"])
    assert summary.task_states == {"pending": 0, "starting": 1, "running": 1, "restarting": 1, "succeeded": 0,
                                   "failed": 0, "killed": 0, "dead": 0}
    assert (summary.state, summary.reason, summary.tasks, summary.last.via) == ("running", None, 3, "schedule")


def test_an_ended_job_has_a_reason_and_its_killed_tasks_count_as_dead():
    h = cell(tasks=2)
    h.run(Kill("web.alice"))
    summary = views.job_summary(h.state, h.state.jobs["web.alice"])
    # "dead" until the master derives end states, then "killed"
    assert summary.state in ("killed", "dead") and summary.reason is not None
    assert (summary.task_states["killed"], summary.task_states["dead"]) == (2, 2)


def test_a_job_detail_has_its_spec_and_its_tasks():
    h = cell(tasks=2)
    detail = views.job_detail(h.state, h.state.jobs["web.alice"], h.clock.now())
    assert detail.spec["name"] == "web" and [t.index for t in detail.task_list] == [0, 1]
    assert all(t.state == "starting" for t in detail.task_list)


JOB_FILTERS = [
    ("no word passes every job", None, {"web.alice", "db.alice", "old.alice"}),
    ("pending passes the job that waits", "pending", {"db.alice"}),
    ("running passes the job that is placed", "running", {"web.alice"}),
    ("dead passes every ended job", "dead", {"old.alice"}),
    ("succeeded passes no killed job", "succeeded", set()),
]


@pytest.mark.parametrize("case,word,expected", JOB_FILTERS, ids=[f[0] for f in JOB_FILTERS])
def test_the_job_state_filter_accepts_the_job_words_and_dead(case, word, expected):
    h = cell()
    h.submit("db", cpu="64")  # no machine holds it
    h.submit("old")
    h.run(Kill("old.alice"))
    h.schedule()
    wanted = views.job_filter(word)
    assert {j.id for j in h.state.jobs.values() if wanted is None or wanted(j)} == expected


TASK_FILTERS = [
    ("running passes every placed task, whatever its agent says", "running", {0, 1, 2}),
    ("starting passes only the task its agent has not reported", "starting", {0}),
    ("restarting passes only the task its agent restarts", "restarting", {1}),
    ("pending passes no placed task", "pending", set()),
    ("dead passes no live task", "dead", set()),
    ("killed passes no live task", "killed", set()),
]


@pytest.mark.parametrize("case,word,expected", TASK_FILTERS, ids=[f[0] for f in TASK_FILTERS])
def test_the_task_state_filter_accepts_the_task_words_and_the_lifecycle_states(case, word, expected):
    h = cell(tasks=3)
    reported(h, "1.web.alice.local", state="backoff", restarts=1)
    reported(h, "2.web.alice.local")
    wanted = views.task_filter(word)
    assert {t.index for t in h.state.tasks.values() if wanted(t)} == expected


@pytest.mark.parametrize("make_filter,word", [(views.job_filter, "zombie"), (views.job_filter, "starting"),
                                               (views.task_filter, "zombie"), (views.task_filter, "up")],
                         ids=["an unknown job word", "a task word for jobs", "an unknown task word",
                              "a machine word for tasks"])
def test_an_unknown_state_word_is_a_400_naming_state_and_the_accepted_words(make_filter, word):
    with pytest.raises(AdmissionError) as e:
        make_filter(word)
    assert e.value.status == 400 and e.value.errors[0][0] == "state"
    accepted = views.JOB_WORDS if make_filter is views.job_filter else views.TASK_FILTER_WORDS
    assert all(w in e.value.errors[0][1] for w in accepted) and repr(word) in e.value.errors[0][1]


def test_the_accepted_words_are_the_status_words_and_the_aliases():
    assert views.JOB_WORDS == ("pending", "running", "succeeded", "failed", "killed", "dead")
    assert views.TASK_FILTER_WORDS == ("pending", "starting", "running", "restarting", "succeeded", "failed",
                                       "killed", "dead")


def test_why_a_pending_task_waits_gives_the_sentence_and_the_record():
    h = Harness()
    h.machine("m1", cpu="1")
    h.submit("web", cpu="4")
    h.schedule()
    why = views.why_view(h.state.tasks[NAME], h.clock.now())
    assert (why.state, why.word) == ("pending", "pending")
    assert why.summary.startswith("0/1 machines are available") and why.explanation.machines == 1


def test_why_a_placed_task_says_where_it_is_and_what_it_does():
    h = cell()
    restarting(h)
    why = views.why_view(h.state.tasks[NAME], h.clock.now())
    assert (why.state, why.word, why.explanation) == ("running", "restarting", None)
    assert why.summary == "the task is running on m1 (schedule: on m1)" and why.detail.startswith("restarting: 4")


def test_a_machine_view_has_its_free_resources_and_task_count():
    h = cell(tasks=2)
    view = views.machine_view(h.state, "m1")
    assert (view.free.cpu, view.tasks, view.capacity.cpu) == (2000, 2, 4000)
    detail = views.machine_detail(h.state, "m1", h.core.assignments("m1"))
    assert detail.task_list == ["0.web.alice.local", "1.web.alice.local"]


def test_an_unknown_machine_is_a_404_naming_machine():
    with pytest.raises(AdmissionError) as e:
        views.machine_view(Harness().state, "nope")
    assert (e.value.status, e.value.errors) == (404, [("machine", "no machine nope")])


def test_the_cell_counts_tasks_by_word():
    h = cell(tasks=2)
    reported(h)
    summary = views.cell_summary(h.state, "memory", "")
    assert (summary.machines, summary.jobs, summary.tasks["running"], summary.tasks["starting"]) == (1, 1, 1, 1)


def test_events_of_a_job_come_in_seq_order_the_job_first_at_a_tie():
    h = cell(tasks=2)
    events = views.job_events(h.state, h.state.jobs["web.alice"]).events
    assert [(e.kind, e.object, e.via) for e in events] == [
        ("job", "web.alice", "submit"), ("task", "0.web.alice.local", "submit"), ("task", "1.web.alice.local", "submit"),
        ("job", "web.alice", "schedule"), ("task", "0.web.alice.local", "schedule"),
        ("task", "1.web.alice.local", "schedule")]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
