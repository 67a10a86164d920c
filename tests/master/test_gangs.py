"""Gangs in the master: admission of ``gang``/``min_tasks``, an all-or-nothing commit, the pending
reason `corral why` shows, and the property that no round leaves a gang partly placed."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.master.commands import Kill, Submit, Update
from corral.master.errors import AdmissionError
from corral.master.views import why_view
from corral.model.job import TaskState

from tests.master.helpers import Harness, spec

P, R = TaskState.PENDING, TaskState.RUNNING


def states(h: Harness, job: str) -> list[TaskState]:
    return [t.state for t in h.state.tasks_of(f"{job}.alice")]


def running(h: Harness, job: str, user: str = "alice") -> int:
    return sum(t.state is R for t in h.state.tasks_of(f"{job}.{user}"))


# ---- admission ------------------------------------------------------------------------------------

REFUSED = [
    ("min_tasks above tasks", dict(tasks=3, min_tasks=4), "min_tasks", "expected at most tasks (3), got 4"),
    ("min_tasks of 0", dict(tasks=3, min_tasks=0), "min_tasks", "greater than or equal to 1"),
    ("min_tasks as a string", dict(tasks=3, min_tasks="2"), "min_tasks", "expected a valid integer"),
    ("gang as a string", dict(tasks=3, gang="yes"), "gang", "expected a valid boolean"),
    ("gang and min_tasks both", dict(tasks=3, gang=True, min_tasks=2), "min_tasks", "not both"),
]


@pytest.mark.parametrize("case, fields, field, phrase", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_bad_gang_field_is_refused_by_name(case, fields, field, phrase):
    h = Harness()
    with pytest.raises(AdmissionError) as err:
        h.run(Submit(spec("train", **fields)))
    assert err.value.status in (400, 422)
    assert phrase in dict(err.value.errors)[field], err.value.errors


def test_an_update_may_not_shrink_a_job_below_its_min_tasks():
    h = Harness()
    h.submit("train", tasks=4, min_tasks=3)
    with pytest.raises(AdmissionError) as err:
        h.run(Update(spec("train", tasks=2, min_tasks=3)))
    assert "min_tasks" in dict(err.value.errors)


# ---- scheduling and commit --------------------------------------------------------------------------


def cell(h: Harness, machines: int) -> None:
    for i in range(machines):
        h.machine(f"m{i}", cpu="4")


def test_a_gang_that_fits_starts_whole():
    h = Harness()
    cell(h, 3)
    h.submit("train", tasks=3, cpu="4", gang=True)
    h.schedule()
    assert states(h, "train") == [R, R, R]
    assert len({t.machine for t in h.state.tasks_of("train.alice")}) == 3


def test_a_gang_that_does_not_fit_holds_nothing_and_says_why():
    h = Harness()
    cell(h, 3)
    h.submit("hog", cpu="1")
    h.schedule()
    h.submit("train", tasks=3, cpu="4", gang=True)
    h.schedule()
    assert states(h, "train") == [P, P, P]
    task = h.task("train")
    why = why_view(task, h.clock.now())
    assert why.summary.startswith("gang of 3: 2 machines have room for 1 task, 3 needed."), why.summary
    assert why.explanation.gang.startswith("gang of 3")
    # a gang's tasks are never parked one by one: every round sees the whole gang
    assert all(t.name in h.core.queue.runnable for t in h.state.tasks_of("train.alice"))
    h.run(Kill("hog.alice"))
    h.schedule()
    assert states(h, "train") == [R, R, R]


def test_if_one_placement_of_a_gang_went_stale_none_of_them_commits():
    h = Harness()
    cell(h, 3)
    h.submit("train", tasks=3, cpu="4", gang=True)
    rnd = h.core.snapshot()
    plan = h.core.scheduler.schedule(rnd.view, rnd.pending)
    assert len(plan.placements) == 3
    h.submit("hog", cpu="1")  # planned and committed on its own while the gang's plan is open
    hog = h.core.snapshot(only={"0.hog.alice.local"})
    h.commit(hog, h.core.scheduler.schedule(hog.view, hog.pending))
    taken = h.task("hog").machine
    seq = h.state.seq
    out = h.commit(rnd, plan)
    assert out.reply["placed"] == 0 and len(out.reply["stale"]) == 3
    assert out.events == [] and out.effects == [] and h.state.seq == seq
    assert states(h, "train") == [P, P, P]
    stale_on = next(p.task_id for p in plan.placements if p.machine == taken)
    reasons = {t.name: t.reason for t in h.state.tasks_of("train.alice")}
    assert reasons[stale_on].startswith(f"its placement went stale (task {stale_on} does not fit on {taken}")
    others = [r for name, r in reasons.items() if name != stale_on]
    assert all(r.startswith(f"its placement went stale ({stale_on} of its gang went stale:") for r in others)


def test_a_gang_whose_machines_are_unchanged_commits_without_a_second_fit_check():
    h = Harness()
    cell(h, 4)
    h.submit("train", tasks=3, cpu="4", gang=True)
    rnd = h.core.snapshot()
    plan = h.core.scheduler.schedule(rnd.view, rnd.pending)
    h.submit("hog", cpu="1")  # a submission changes no machine
    out = h.commit(rnd, plan)
    assert out.reply["placed"] == 3 and out.reply["stale"] == []


def test_min_tasks_starts_that_many_together_then_the_rest_one_by_one():
    h = Harness()
    cell(h, 1)
    h.submit("train", tasks=4, cpu="4", min_tasks=2)
    h.schedule()
    assert running(h, "train") == 0
    assert h.task("train").reason.startswith("gang of 2 (at least 2 of 4 pending tasks together)")
    h.machine("m1", cpu="4")
    h.schedule()
    assert running(h, "train") == 2  # the gang of 2 together
    h.machine("m2", cpu="4")
    h.schedule()
    assert running(h, "train") == 3  # then one more on its own


def test_a_production_gang_preempts_only_when_it_makes_the_whole_gang_fit():
    h = Harness()
    cell(h, 2)
    h.submit("batch", cpu="4")
    h.submit("prod", cpu="4", priority=9)
    h.schedule()
    h.submit("train", tasks=2, cpu="4", priority=10, gang=True)
    out = h.schedule()
    assert out.reply["preempted"] == 0 and running(h, "batch") == 1 and running(h, "train") == 0
    h.run(Kill("prod.alice"))
    h.submit("batch2", cpu="4")
    h.schedule()
    assert running(h, "train") == 2 and running(h, "batch") == 0 and running(h, "batch2") == 0


# ---- the property -------------------------------------------------------------------------------------

JOB = st.tuples(st.integers(1, 4), st.sampled_from(["1", "2", "4"]), st.sampled_from(["gang", "min", "none"]),
                st.integers(1, 4), st.sampled_from([2, 10]))
STEP = st.one_of(st.tuples(st.just("submit"), JOB), st.tuples(st.just("kill"), st.integers(0, 30)),
                 st.tuples(st.just("round"), st.none()), st.tuples(st.just("race"), JOB))


def _check(h: Harness) -> None:
    for job in h.state.jobs.values():
        size = job.spec.gang_size
        if size > 1:
            n = sum(t.state is R for t in h.state.tasks_of(job.id))
            assert n == 0 or n >= size, (job.id, n, size)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=14))
def test_no_round_leaves_a_gang_partly_placed(steps):
    h = Harness()
    cell(h, 3)
    jobs: list[str] = []

    def submit(params) -> None:
        tasks, cpu, mode, min_tasks, priority = params
        name = f"j{len(jobs)}"
        fields = {"gang": True} if mode == "gang" else {"min_tasks": min(min_tasks, tasks)} if mode == "min" else {}
        h.submit(name, tasks=tasks, cpu=cpu, priority=priority, **fields)
        jobs.append(name)

    for kind, arg in steps:
        if kind == "submit":
            submit(arg)
        elif kind == "kill" and jobs:
            h.run(Kill(f"{jobs[arg % len(jobs)]}.alice"))
        elif kind == "round":
            h.schedule()
        elif kind == "race":  # a plan made, another job placed meanwhile, then the plan committed
            rnd = h.core.snapshot()
            plan = h.core.scheduler.schedule(rnd.view, rnd.pending)
            submit(arg)
            h.schedule()
            _check(h)
            h.commit(rnd, plan)
        _check(h)


# ---- over HTTP -----------------------------------------------------------------------------------------


def test_the_api_refuses_a_bad_min_tasks_by_field_and_why_speaks_of_the_gang(client):
    from tests.master.test_api import AGENT_BODY, ALICE, OPS, wait_for, web

    bad = client.post("/jobs", json=web(tasks=2, min_tasks=3), headers=ALICE)
    assert bad.status_code in (400, 422)
    assert [e["field"] for e in bad.json()["errors"]] == ["min_tasks"]
    client.post("/machines", json=AGENT_BODY, headers=OPS).raise_for_status()
    client.post("/jobs", json=web(tasks=3, gang=True, resources={"cpu": "4", "memory": "1Gi"}),
                headers=ALICE).raise_for_status()
    why = wait_for(lambda: client.get("/jobs/web/tasks/0/why", headers=ALICE).json(),
                   lambda w: w["explanation"] is not None)
    assert why["summary"].startswith("gang of 3: 1 machine has room for 2 tasks, 3 needed."), why["summary"]
    assert why["explanation"]["gang"].startswith("gang of 3")
