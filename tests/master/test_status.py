"""The words shown for tasks and jobs: every row of corral.master.status's table, details and end reasons."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, Kill, Update
from corral.master.lifecycle import Transition
from corral.master.records import TaskRecord
from corral.master.status import TASK_WORDS, job_end_reason, last_exit, task_detail, task_word
from corral.model.job import TaskState

from tests.master.helpers import Harness, spec

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
NOW = 1000.0


def task(state: TaskState = R, agent: dict | None = None, last: tuple[str, str] | None = None,
         next_try_at: float | None = None) -> TaskRecord:
    history = [Transition(1, "c1", "submit", None, "pending")]
    if state is not P:
        history.append(Transition(2, "c2", "schedule", "pending", "running", machine="m1"))
    if last is not None:
        history.append(Transition(3, "c3", last[0], "running", state.value, note=last[1]))
    return TaskRecord("0.web.alice.local", "web.alice", 0, state=state, machine="m1" if state is R else None,
                      generation=1, history=history, agent=agent, agent_next_try_at=next_try_at)


# (case, the task, its word)
WORDS = [
    ("a task waiting to be placed is pending", task(P), "pending"),
    ("a placed task its agent has not reported yet is starting", task(R), "starting"),
    ("a placed task its agent reports for an older placement is starting", task(R, {"generation": 0,
                                                                                     "state": "running"}), "starting"),
    ("a placed task its agent is starting is starting", task(R, {"generation": 1, "state": "starting"}), "starting"),
    ("a placed task its agent runs is running", task(R, {"generation": 1, "state": "running"}), "running"),
    ("a task whose process failed and waits a back-off is restarting",
     task(R, {"generation": 1, "state": "backoff", "restarts": 1}), "restarting"),
    ("a task being started again after restarts is restarting",
     task(R, {"generation": 1, "state": "starting", "restarts": 2}), "restarting"),
    ("a task that exited 0 succeeded", task(D, last=("finish", "exit code 0")), "succeeded"),
    ("a task its agent gave up on everywhere failed", task(D, last=("fail", "failed on m1; last error: oom")),
     "failed"),
    ("a task killed by its user is killed", task(D, last=("kill", "killed by its user")), "killed"),
    ("a task rejected because the job it waits for failed is killed",
     task(D, last=("reject", "job prep it waits for failed")), "killed"),
]


@pytest.mark.parametrize("case,record,word", WORDS, ids=[c[0] for c in WORDS])
def test_each_row_of_the_status_table(case, record, word):
    assert task_word(record) == word and word in TASK_WORDS


def test_every_word_of_the_table_has_a_case():
    assert {w for _, _, w in WORDS} == set(TASK_WORDS)


# (case, the task, its detail line)
DETAILS = [
    ("a restarting task names its restarts, next try and last exit",
     task(R, {"generation": 1, "state": "backoff", "restarts": 4, "exit_code": 127,
              "last_error": "sh: foo: not found"}, next_try_at=NOW + 8),
     'restarting: 4 restarts, next try in 8 s, last: exit 127 "sh: foo: not found"'),
    ("a next try already due reads as in 0 s", task(R, {"generation": 1, "state": "backoff", "restarts": 1,
                                                         "exit_code": 1}, next_try_at=NOW - 3),
     "restarting: 1 restart, next try in 0 s, last: exit 1"),
    ("a restarting task whose next try is unknown leaves it out",
     task(R, {"generation": 1, "state": "backoff", "restarts": 2, "last_error": "oom"}),
     'restarting: 2 restarts, last: "oom"'),
    ("an error that only repeats the exit code is not said twice",
     task(R, {"generation": 1, "state": "backoff", "restarts": 1, "exit_code": 2, "last_error": "exit code 2"},
          next_try_at=NOW + 1.4), "restarting: 1 restart, next try in 1 s, last: exit 2"),
    ("a multi-line error is one line", task(R, {"generation": 1, "state": "backoff", "restarts": 1,
                                                 "last_error": "Traceback:\n  boom\n"}),
     'restarting: 1 restart, last: "Traceback: boom"'),
    ("a running task that restarted before names its restarts and last exit",
     task(R, {"generation": 1, "state": "running", "restarts": 3, "exit_code": 137}),
     "running: 3 restarts, last: exit 137"),
    ("a running task that never restarted has nothing to add", task(R, {"generation": 1, "state": "running"}), ""),
    ("a task not yet reported is starting on its machine", task(R), "starting on m1"),
    ("a pending task has nothing to add (its reason says why)", task(P), ""),
    ("a succeeded task has nothing to add", task(D, last=("finish", "exit code 0")), ""),
    ("a failed task says how it failed", task(D, last=("fail", "failed on m1; last error: exit 1")),
     "failed: failed on m1; last error: exit 1"),
    ("a killed task says why", task(D, last=("kill", "killed by its user")), "killed: killed by its user"),
]


@pytest.mark.parametrize("case,record,detail", DETAILS, ids=[c[0] for c in DETAILS])
def test_task_detail_lines(case, record, detail):
    assert task_detail(record, NOW) == detail


# (case, agent status, the last exit)
EXITS = [
    ("an exit code and an error", {"exit_code": 127, "last_error": "sh: foo: not found"},
     'exit 127 "sh: foo: not found"'),
    ("an exit code alone", {"exit_code": 1}, "exit 1"),
    ("an error alone", {"last_error": "  oom  "}, '"oom"'),
    ("neither", {}, ""),
]


@pytest.mark.parametrize("case,agent,text", EXITS, ids=[c[0] for c in EXITS])
def test_last_exit(case, agent, text):
    assert last_exit(agent) == text


def ended(how: str) -> Harness:
    h = Harness()
    h.core.failover_machines = 1
    h.machine("m1")
    h.submit("web", tasks=2)
    h.schedule()
    t = h.task("web")
    if how == "finish":
        for i in (0, 1):
            t = h.task("web", i)
            h.run(AgentReport("m1", [{"task_id": t.name, "generation": t.generation, "state": "finished"}]))
    elif how == "fail":
        h.run(AgentReport("m1", [{"task_id": t.name, "generation": t.generation, "state": "failed",
                                  "last_error": "exit 127: sh: foo: not found"}]))
    elif how == "kill":
        h.run(Kill("web.alice"))
    return h


# (case, how the job ended, its end reason)
END_REASONS = [
    ("a failed job names the failing task and its last error", "fail",
     "task 0 failed on m1; last error: exit 127: sh: foo: not found"),
    ("a killed job says who killed it", "kill", "killed by its user"),
    ("a succeeded job says every task succeeded", "finish", "every task succeeded"),
    ("a live job has no end reason", "live", ""),
]


@pytest.mark.parametrize("case,how,reason", END_REASONS,
                         ids=[c.values[0] if hasattr(c, "values") else c[0] for c in END_REASONS])
def test_job_end_reason(case, how, reason):
    h = ended(how)
    assert job_end_reason(h.state.jobs["web.alice"]) == reason


def test_a_task_of_a_failed_job_killed_with_it_is_killed_and_says_why():
    h = ended("fail")
    other = h.task("web", 1)
    assert task_word(other) == "killed"
    assert task_detail(other, NOW) == "killed: task 0 failed on m1; last error: exit 127: sh: foo: not found"
    assert task_word(h.task("web", 0)) == "failed"


def test_words_follow_a_real_task_through_reports():
    h = Harness()
    h.machine("m1")
    h.submit("web")
    assert task_word(h.task("web")) == "pending"
    h.schedule()
    t = h.task("web")
    assert task_word(t) == "starting" and task_detail(t, h.clock.now()) == "starting on m1"
    h.run(AgentReport("m1", [{"task_id": t.name, "generation": 1, "state": "backoff", "restarts": 4,
                              "exit_code": 127, "last_error": "sh: foo: not found", "restart_in_s": 8}]))
    assert task_detail(t, h.clock.now()) == ('restarting: 4 restarts, next try in 8 s, '
                                             'last: exit 127 "sh: foo: not found"')
    h.clock.advance(5)
    assert task_detail(t, h.clock.now()).startswith("restarting: 4 restarts, next try in 3 s")
    h.run(Update(spec("web", memory="2Gi")))  # a restart: pending again
    assert task_word(h.task("web")) == "pending"
    h.schedule()  # placed again: what the agent said of the old placement is forgotten
    t = h.task("web")
    assert (t.generation, t.agent, t.agent_next_try_at) == (2, None, None)
    assert task_word(t) == "starting"
