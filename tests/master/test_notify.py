"""Notifications (partial agent reports pushed between polls) and why they can never do harm.

The core is driven sans-IO with ``AgentReport(..., full=False)`` as the notify endpoint builds it: lost,
duplicated, reordered notifications and an agent that restarted between two of them. Then the endpoint
over HTTP (its checks and errors) and the link's bookkeeping when the core learns between polls."""

from __future__ import annotations

import json

import httpx
import pytest

from corral.agent import supervisor as sv
from corral.agent.launch import TaskLaunch
from corral.master.commands import AgentReport, KillTask, MachineDown, MachineUp, RegisterMachine, StartTask, Submit
from corral.model.job import JobState, TaskState

from tests.master.conftest import auth
from tests.master.helpers import Harness

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
TASK = "0.batch.alice.local"


def status(state: str, generation: int = 1, task: str = TASK, **fields) -> dict:
    base = {"task_id": task, "generation": generation, "state": state, "pid": 100 if state == "running" else None,
            "exit_code": 0 if state == "finished" else None, "failures": 0, "last_error": ""}
    return {**base, **fields}


def notify(h: Harness, *statuses: dict, machine: str = "m1", incarnation: str = "i1"):
    return h.run(AgentReport(machine, list(statuses), incarnation, full=False))


def running_cell(machines=("m1",), tasks: int = 1) -> Harness:
    """A core with ``machines`` and job batch.alice of ``tasks`` tasks running (generation 1)."""
    h = Harness()
    for m in machines:
        h.machine(m)
    h.submit("batch", tasks=tasks)
    h.schedule()
    assert all(t.state is R and t.generation == 1 for t in h.state.tasks.values())
    return h


def vias(h: Harness, name: str = TASK) -> list[str]:
    return [t.via for t in h.state.tasks[name].history]


def agent_with_ended_task(state: str) -> sv.Supervisor:
    """The agent side: a supervisor whose task ran and ended ``state`` (finished or killed)."""
    s = sv.Supervisor(clock=lambda: 0.0, kill_grace_s=0.0, validate=True)
    launch = TaskLaunch.model_validate({"task_id": TASK, "generation": 1, "name": TASK, "command": "true"})
    [spawn] = s.handle(sv.Launch(launch))
    s.handle(sv.Started(TASK, spawn.attempt, 100))
    if state == "killed":
        s.handle(sv.Kill(TASK))
    s.handle(sv.Exited(TASK, spawn.attempt, 0 if state == "finished" else -9))
    assert s.tasks[TASK].state == state
    return s


# ---- lost ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["finished", "failed", "killed"])
def test_a_lost_notification_only_delays_the_news_until_the_poll_which_ends_the_task_the_same_way(ending):
    told, polled = running_cell(), running_cell()
    notify(told, status(ending, failures=3 if ending == "failed" else 0))
    told.run(AgentReport("m1", [status(ending, failures=3 if ending == "failed" else 0)], "i1"))  # the poll after it
    polled.run(AgentReport("m1", [status(ending, failures=3 if ending == "failed" else 0)], "i1"))  # the poll alone
    assert vias(told) == vias(polled) and vias(told)[-1] in ("finish", "fail", "evict")
    assert told.state.tasks[TASK].state is polled.state.tasks[TASK].state
    assert told.state.jobs["batch.alice"].state is polled.state.jobs["batch.alice"].state


# ---- duplicated ------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["running", "finished", "failed", "killed"])
def test_the_same_notification_twice_changes_nothing_the_second_time(state):
    h = running_cell()
    extra = {"failures": 3} if state == "failed" else {}
    notify(h, status(state, **extra))
    history, seq = vias(h), h.state.seq
    again = notify(h, status(state, **extra))
    assert again.events == [] and again.effects == []
    assert vias(h) == history and h.state.seq == seq


# ---- reordered -------------------------------------------------------------------------------------


def test_a_stale_running_after_finished_neither_revives_the_task_nor_kills_anything_alive():
    h = running_cell()
    notify(h, status("finished"))
    assert h.state.tasks[TASK].state is D and h.state.jobs["batch.alice"].state not in (JobState.PENDING, JobState.RUNNING)
    late = notify(h, status("running"))
    assert late.events == [] and vias(h) == ["submit", "schedule", "finish"]
    # Today the core answers an unassigned live status with a kill of that task on that machine; the
    # agent has it finished, and a kill of an ended task does nothing there.
    agent = agent_with_ended_task("finished")
    for effect in late.effects:
        assert isinstance(effect, KillTask) and (effect.task, effect.machine) == (TASK, "m1")
        assert agent.handle(sv.Kill(effect.task, effect.reason)) == []
    assert agent.tasks[TASK].state == "finished"


@pytest.mark.parametrize("stale", ["starting", "running", "finished", "failed", "killed"])
def test_a_status_of_the_previous_generation_is_ignored_once_the_task_runs_again_on_the_same_machine(stale):
    h = running_cell()
    notify(h, status("killed", last_error="evicted: machine memory pressure"))  # evicted there: pending again
    assert h.state.tasks[TASK].state is P
    h.schedule()
    task = h.state.tasks[TASK]
    assert task.state is R and task.machine == "m1" and task.generation == 2
    late = notify(h, status(stale, generation=1, failures=3 if stale == "failed" else 0))
    assert late.events == [] and late.effects == []
    assert task.state is R and task.generation == 2


def test_a_late_running_after_the_task_went_back_to_pending_adds_no_event_and_no_start():
    h = running_cell()
    notify(h, status("killed"))
    history = vias(h)
    late = notify(h, status("running"))
    assert late.events == [] and not any(isinstance(e, StartTask) for e in late.effects)
    assert vias(h) == history and h.state.tasks[TASK].state is P
    # Any kill it sends goes out before the task's next start (effects without events are handed over
    # at once, under the lock), and the agent has the old copy killed already.
    agent = agent_with_ended_task("killed")
    for effect in late.effects:
        assert agent.handle(sv.Kill(effect.task, effect.reason)) == []


def test_two_notifications_of_one_burst_in_either_order_end_in_the_same_state():
    ordered, swapped = running_cell(), running_cell()
    first, second = status("running", pid=7), status("finished")
    notify(ordered, first)
    notify(ordered, second)
    notify(swapped, second)
    notify(swapped, first)
    assert vias(ordered) == vias(swapped) == ["submit", "schedule", "finish"]


# ---- the agent restarted between two notifications ------------------------------------------------


def test_after_an_agent_restart_the_new_incarnation_s_end_of_the_relaunched_task_is_taken():
    """The link relaunches a task the restarted agent lost with the same generation: its news counts."""
    h = running_cell()
    notify(h, status("running", pid=7), incarnation="i1")
    notify(h, status("running", pid=8), incarnation="i2")  # relaunched after the restart
    notify(h, status("finished"), incarnation="i2")
    assert vias(h) == ["submit", "schedule", "finish"]


def test_a_late_notification_of_the_previous_incarnation_does_not_end_the_task_the_new_one_runs():
    h = running_cell()
    h.run(AgentReport("m1", [status("running", pid=8)], "i2"))  # the poll: restarted, task relaunched (gen 1)
    late = notify(h, status("killed", last_error="the agent is shutting down"), incarnation="i1")
    assert late.events == [] and h.state.tasks[TASK].state is R


def test_a_notification_from_a_lost_machine_neither_kills_nor_moves_the_tasks_it_may_take_back():
    h = running_cell(machines=("m1", "m2"))
    machine = h.state.tasks[TASK].machine
    h.run(MachineDown(machine))
    late = notify(h, status("running"), machine=machine)
    assert late.events == [] and late.effects == []


def test_a_lost_machine_that_answers_a_poll_again_takes_its_tasks_back_whatever_was_notified():
    h = running_cell(machines=("m1", "m2"))
    machine = h.state.tasks[TASK].machine
    h.run(MachineDown(machine))
    h.run(MachineUp(machine, [status("running")], "i1"))
    task = h.state.tasks[TASK]
    assert task.state is R and task.machine == machine and task.generation == 1


# ---- the endpoint over HTTP -----------------------------------------------------------------------


def _wait(predicate, what: str, timeout_s: float = 10.0):
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def placed(server, client):
    """Machine m1 registered by its agent, job batch.alice's task running on it."""
    r = client.post("/agents/register", headers=auth("t-agent"),
                    json={"name": "m1", "address": "http://127.0.0.1:9", "capacity": {"cpu": "4", "memory": "8Gi"}})
    assert r.status_code == 200, r.text
    r = client.post("/jobs", headers=auth("t-alice"),
                    json={"name": "batch", "command": "true", "resources": {"cpu": "1", "memory": "1Gi"}})
    assert r.status_code == 201, r.text
    state = server.master.core.state
    _wait(lambda: state.tasks[TASK].state is R, "the task to be placed")
    return server


def post(client, body, machine="m1", token="t-agent", **kw):
    return client.post(f"/agents/{machine}/notify", headers=auth(token), json=body, **kw)


def test_a_notification_ends_the_task_and_its_job_at_once(placed, client):
    r = post(client, {"incarnation": "i1", "seq": 1, "tasks": [status("finished")]})
    assert r.status_code == 200 and r.json()["applied"] is True
    state = placed.master.core.state
    assert state.tasks[TASK].state is D and state.jobs["batch.alice"].state not in (JobState.PENDING, JobState.RUNNING)
    assert state.tasks[TASK].history[-1].via == "finish"


def test_a_body_overtaken_by_a_newer_one_of_the_same_incarnation_is_ignored(placed, client):
    assert post(client, {"incarnation": "i1", "seq": 5, "tasks": [status("running")]}).json()["applied"]
    r = post(client, {"incarnation": "i1", "seq": 4, "tasks": [status("finished")]})
    assert r.status_code == 200 and r.json()["applied"] is False and "after report 5" in r.json()["ignored"]
    assert placed.master.core.state.tasks[TASK].state is R
    assert post(client, {"incarnation": "i2", "seq": 1, "tasks": [status("finished")]}).json()["applied"]


def test_a_lost_machine_s_notification_is_ignored_until_a_poll_brings_it_back(placed, client):
    placed.master.execute(MachineDown("m1"))
    r = post(client, {"incarnation": "i1", "seq": 1, "tasks": [status("running")]})
    assert r.status_code == 200 and r.json()["applied"] is False and "lost" in r.json()["ignored"]
    assert not any(isinstance(e, KillTask) for e in placed.master.core.transport.sent)


class _PolledLink:
    """What the endpoint asks of the link: the incarnation of the last poll answer."""

    def __init__(self, incarnation):
        self.incarnation = incarnation

    def incarnation_of(self, machine):
        return self.incarnation


def test_a_notification_of_another_incarnation_than_the_last_poll_saw_is_ignored(placed, client):
    placed.master.link = _PolledLink("i2")
    try:
        r = post(client, {"incarnation": "i1", "seq": 9, "tasks": [status("killed")]})
        assert r.json()["applied"] is False and "i2" in r.json()["ignored"]
        assert placed.master.core.state.tasks[TASK].state is R
        assert post(client, {"incarnation": "i2", "seq": 1, "tasks": [status("finished")]}).json()["applied"]
    finally:
        del placed.master.link


BAD_BODIES = [
    ("a body that is not an object", [1, 2], "body"),
    ("a body without tasks", {"incarnation": "i1", "seq": 1}, "tasks"),
    ("tasks that are not a list", {"incarnation": "i1", "seq": 1, "tasks": {"a": 1}}, "tasks"),
    ("a status without a task id", {"incarnation": "i1", "seq": 1, "tasks": [{"generation": 1, "state": "running"}]},
     "tasks[0].task_id"),
    ("a status in no known state", {"incarnation": "i1", "seq": 1, "tasks": [status("running"), status("asleep")]},
     "tasks[1].state"),
    ("a generation that is not an integer", {"incarnation": "i1", "seq": 1, "tasks": [status("running", generation="1")]},
     "tasks[0].generation"),
    ("an exit code that is not an integer", {"incarnation": "i1", "seq": 1, "tasks": [status("finished", exit_code="0")]},
     "tasks[0].exit_code"),
    ("a negative sequence number", {"incarnation": "i1", "seq": -1, "tasks": []}, "seq"),
    ("a sequence number that is a boolean", {"incarnation": "i1", "seq": True, "tasks": []}, "seq"),
    ("no incarnation", {"seq": 1, "tasks": []}, "incarnation"),
    ("an unknown field", {"incarnation": "i1", "seq": 1, "tasks": [], "full": True}, "full"),
]


@pytest.mark.parametrize("body, field", [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
def test_a_bad_body_is_refused_with_400_naming_the_field_and_changes_nothing(placed, client, body, field):
    seq = placed.master.core.state.seq
    r = post(client, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid" and field in [e["field"] for e in r.json()["errors"]]
    assert placed.master.core.state.seq == seq


@pytest.mark.parametrize("raw, words", [
    (b"", "empty body"), (b"{not json", "invalid JSON"), (b'{"incarnation": "i1", "seq": NaN, "tasks": []}', "NaN"),
    (b'{"incarnation": "i1", "seq": 1, "tasks": [{"usage": 1e999}]}', "out of range"),
], ids=["an empty body", "invalid JSON", "NaN", "an infinite number"])
def test_a_body_that_is_not_json_is_refused_with_400_naming_the_body(placed, client, raw, words):
    r = client.post("/agents/m1/notify", headers={**auth("t-agent"), "content-type": "application/json"}, content=raw)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body" and words in r.json()["message"]


def test_a_body_over_the_limit_is_refused_with_413(placed, client):
    from corral.master.notify import MAX_BODY

    big = {"incarnation": "i1", "seq": 1, "tasks": [status("running", last_error="x" * MAX_BODY)]}
    r = post(client, big)
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "body"


def test_an_unknown_machine_is_404_and_only_agent_or_admin_tokens_may_notify(placed, client):
    body = {"incarnation": "i1", "seq": 1, "tasks": []}
    r = post(client, body, machine="m9")
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "machine"
    assert post(client, body, token="t-alice").status_code == 403
    assert post(client, body, token="nope").status_code == 401
    assert client.post("/agents/m1/notify", json=body).status_code == 401
    assert post(client, body, token="t-ops").status_code == 200


# ---- the link's bookkeeping when the core learns between polls ------------------------------------


@pytest.fixture
def rig():
    from tests.master.test_link import Rig

    r = Rig(agents=("m1",))
    try:
        yield r
    finally:
        r.close()


def test_a_task_that_ended_while_a_poll_was_answered_keeps_its_log_on_the_agent(rig):
    """The answer says running; a notification said finished meanwhile. The assignments must not make
    the agent forget the ended copy (and its log) on the strength of the older answer."""
    rig.submit("web", 1)
    rig.poll()
    [name] = [n for n, t in rig.state.tasks.items() if t.state is R]
    agent = rig.agents["m1"]
    agent.tasks.pop(name)
    rig.poll()  # the agent lost it once
    agent.tasks[name] = {"task_id": name, "generation": 1, "state": "running", "pid": 100}
    answer = agent.handle

    def answer_then_notify(request):
        response = answer(request)
        if request.url.path == "/v1/state":  # the task ends before the answer is applied
            agent.tasks[name] = {**agent.tasks[name], "state": "finished", "exit_code": 0, "pid": None}
            rig.master.execute(AgentReport("m1", [agent.tasks[name]], "i1", full=False))
        return response

    agent.handle = answer_then_notify
    rig.poll()
    assert rig.state.tasks[name].state is D
    assert name in agent.assignments[-1] and name in agent.tasks  # kept: the agent still has its log
    agent.handle = answer
    rig.poll()  # the next answer says finished: kept for its log as any ended task
    assert name in agent.tasks and rig.link.logs("m1", name, client=rig.client)[0] == 200


def test_a_stray_copy_is_still_killed_by_the_next_assignments(rig):
    rig.submit("web", 1)
    rig.poll()
    [name] = [n for n, t in rig.state.tasks.items() if t.state is R]
    from corral.master.commands import Kill

    rig.master.execute(Kill("web.alice"))  # the kill effect is lost: never delivered
    for q in rig.link._queues:
        while not q.empty():
            q.get_nowait()
    rig.poll()
    rig.poll()
    assert name not in rig.agents["m1"].tasks and name not in rig.agents["m1"].assignments[-1]


def test_notifications_do_not_keep_a_machine_whose_polls_fail_up(rig):
    rig.submit("web", 1)
    rig.poll()
    [name] = [n for n, t in rig.state.tasks.items() if t.state is R]
    rig.agents["m1"].online = False
    for _ in range(3):
        rig.master.execute(AgentReport("m1", [status("running", task=name)], "i1", full=False))
        rig.poll()
    assert rig.state.machines["m1"].state == "lost"
    assert any(isinstance(c, MachineDown) for c in rig.reports())


def test_the_link_knows_the_incarnation_of_the_last_poll_answer_only(rig):
    assert rig.link.incarnation_of("m1") is None
    rig.poll()
    assert rig.link.incarnation_of("m1") == "i1"
    rig.agents["m1"].incarnation = "i2"
    rig.poll()
    assert rig.link.incarnation_of("m1") == "i2"


# ---- any body: a 2xx or a 4xx naming a field, never a 500 -----------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.master.test_api_properties import check, json_values  # noqa: E402

near_statuses = st.fixed_dictionaries(
    {"task_id": st.sampled_from([TASK, "0.other.alice.local", ""]) | json_values,
     "generation": st.sampled_from([0, 1, 2]) | json_values,
     "state": st.sampled_from(["starting", "running", "backoff", "finished", "failed", "killed"]) | json_values},
    optional={k: json_values for k in ("pid", "exit_code", "failures", "last_error", "healthy", "usage", "x")},
)
near_bodies = st.fixed_dictionaries(
    {"tasks": st.lists(near_statuses, max_size=4) | json_values},
    optional={"incarnation": st.sampled_from(["i1", "i2"]) | json_values, "seq": st.integers(-2, 2**70) | json_values},
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=near_bodies | json_values)
def test_any_notification_body_is_answered_without_a_500(placed, client, body):
    check(post(client, body))
    placed.master.core.state.validate()
