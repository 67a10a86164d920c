"""Start-up costs measured by the agents (TaskStatus.startup_s) through task_started into the estimates."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, MachineDown
from corral.master.core import MasterCore
from corral.master.errors import AdmissionError
from corral.master.estimates import CompletionEstimate
from corral.master.notify import parse_notification
from corral.master.wait_api import machine_wait

from tests.master.helpers import Harness


def status(h: Harness, job: str, index: int, state: str = "running", **more) -> dict:
    t = h.task(job, index)
    return {"task_id": t.name, "generation": t.generation, "state": state, **more}


def started(h: Harness, job: str, index: int, startup_s: float | None, state: str = "running"):
    t = h.task(job, index)
    more = {} if startup_s is None else {"startup_s": startup_s}
    return h.run(AgentReport(t.machine, [status(h, job, index, state, **more)]))


def test_a_status_with_the_start_cost_gives_one_task_started_per_placement():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", cpu="0.5", memory="256Mi", command="sleep")
    h.schedule()
    out = started(h, "b", 0, 2.5)
    (event,) = [e for e in out.events if e.TYPE == "task_started"]
    assert (event.machine, event.generation, event.startup_s) == ("m1", h.task("b", 0).generation, 2.5)
    assert [e.TYPE for e in started(h, "b", 0, 2.5).events] == []  # the next poll says it again: no news
    assert h.state.estimates.startups.first_s("m1") == 2.5


def test_an_old_agent_or_the_simulator_says_nothing_and_the_start_up_stays_zero():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", cpu="0.5", memory="256Mi", command="sleep")
    h.schedule()
    assert [e.TYPE for e in started(h, "b", 0, None).events] == []
    assert h.state.estimates.startups.first_s("m1") == 0.0 and h.state.estimates.startups.warm_s("m1") == 0.0


def test_first_starts_of_a_command_and_warm_ones_are_counted_apart_per_machine():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", tasks=3, cpu="0.5", memory="256Mi", command="sleep")
    h.schedule()
    for i, seconds in enumerate([4.0, 1.0, 2.0]):  # the first fetched what the others found there
        started(h, "b", i, seconds)
    s = h.state.estimates.startups
    assert s.first_s("m1") == 4.0 and s.warm_s("m1") == 1.5
    assert s.estimate("m1", "b.alice") == 1.5  # its job started there: warm
    assert s.estimate("m1", ("command", "sleep")) == 1.5
    assert s.estimate("m1", ("command", "other")) == 4.0  # another command: a first start
    assert s.first_s("m2") == 4.0 and s.warm_s("m2") == 1.5  # a machine with none: the cell's means


def test_another_job_of_the_same_command_starts_warm_and_a_lost_machine_comes_back_cold():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("a", cpu="0.5", memory="256Mi", command="sleep")
    h.schedule()
    started(h, "a", 0, 6.0)
    h.submit("c", cpu="0.5", memory="256Mi", command="sleep")
    h.schedule()
    started(h, "c", 0, 0.5)  # the command is there already: a warm sample, though the job is new
    s = h.state.estimates.startups
    assert (s.first_s("m1"), s.warm_s("m1")) == (6.0, 0.5)
    h.run(MachineDown("m1", "missed its polls"))
    assert not s.is_warm("m1", ("command", "sleep")) and not s.is_warm("m1", "a.alice")


def test_a_short_task_first_reported_finished_still_gives_its_start_cost_before_its_end():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", cpu="0.5", memory="256Mi", command="true")
    h.schedule()
    out = started(h, "b", 0, 0.25, state="finished")
    assert [e.TYPE for e in out.events][:2] == ["task_started", "task_ended"]
    assert h.state.estimates.startups.first_s("m1") == 0.25


def test_the_completion_estimate_is_wait_plus_start_up_plus_runtime_over_the_success_odds():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", tasks=3, cpu="0.5", memory="256Mi", command="sleep")
    h.schedule()
    t0 = h.clock.now()
    for i, (startup, runtime) in enumerate([(3.0, 10.0), (1.0, 20.0), (1.0, 30.0)]):
        started(h, "b", i, startup)
    for i, runtime in enumerate([10.0, 20.0, 30.0]):
        h.clock.advance(t0 + runtime - h.clock.now())
        started(h, "b", i, None, state="finished")
    request = h.state.jobs["b.alice"].request
    assert request.job is None  # a request naming no job cannot say what it runs: a first start (3 s)
    estimate = CompletionEstimate(h.state, lambda machine, req: 12.0)
    p = h.state.estimates.failures.prior_p
    assert abs(estimate(request, "m1") - (12.0 + (3.0 + 20.0) / (1 - p))) < 1e-9
    named = request.__class__(resources=request.resources, priority=request.priority, job="b.alice")
    own_p = h.state.estimates.failures.probability("b.alice")  # a request naming its job: the job's own odds
    assert abs(estimate(named, "m1") - (12.0 + (1.0 + 20.0) / (1 - own_p))) < 1e-9  # its job is warm there


def test_the_machines_wait_answer_carries_its_start_costs():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", tasks=2, cpu="0.5", memory="256Mi", command="sleep")
    h.schedule()
    started(h, "b", 0, 5.0)
    started(h, "b", 1, 0.5)
    answer = machine_wait(h.state, h.clock, "m1")
    assert (answer.startup_first_s, answer.startup_warm_s) == (5.0, 0.5)


def test_a_rebuild_from_the_log_gives_the_same_start_up_estimates():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", tasks=2, cpu="0.5", memory="256Mi", command="sleep")
    h.schedule()
    started(h, "b", 0, 5.0)
    started(h, "b", 1, 0.5)
    rebuilt = MasterCore.rebuild(h.store).estimates.startups
    live = h.state.estimates.startups
    assert (rebuilt.first_s("m1"), rebuilt.warm_s("m1")) == (live.first_s("m1"), live.warm_s("m1")) == (5.0, 0.5)
    assert rebuilt.is_warm("m1", "b.alice")


@pytest.mark.parametrize("bad", ["2", -1.0, float("inf"), True, [1]])
def test_a_notification_with_a_bad_start_cost_names_the_field(bad):
    body = {"incarnation": "i1", "seq": 1, "tasks": [{"task_id": "0.b.alice.local", "generation": 1,
                                                       "state": "running", "startup_s": bad}]}
    with pytest.raises(AdmissionError) as e:
        parse_notification(body)
    assert e.value.status == 400 and [f for f, _ in e.value.errors] == ["tasks[0].startup_s"]
