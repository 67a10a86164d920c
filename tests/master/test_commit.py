"""Plan commit: what still holds is committed, what went stale is named and planned again."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, Kill, KillTask, MachineDown, RegisterMachine, StartTask, Update
from corral.master.commit import readable, try_fit
from corral.model.job import TaskState

from tests.master.helpers import Harness, spec

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
WEB = "0.web.alice.local"


def planned(h: Harness):
    rnd = h.core.snapshot()
    return rnd, h.core.scheduler.schedule(rnd.view, rnd.pending)


def test_a_plan_that_still_holds_is_committed_with_a_start_per_placement():
    h = Harness()
    h.machine("m1")
    h.submit("web", tasks=2)
    rnd, plan = planned(h)
    out = h.commit(rnd, plan)
    assert out.reply == {"placed": 2, "stale": [], "preempted": 0, "unplaced": 0}
    assert [(e.TYPE, e.machine, e.generation) for e in out.events] == [("task_scheduled", "m1", 1)] * 2
    assert sorted(e.task for e in out.effects if isinstance(e, StartTask)) == [WEB, "1.web.alice.local"]
    assert all(t.state is R for t in h.state.tasks_of("web.alice"))


def _change(h: Harness, what: str) -> None:
    if what == "task changed":
        h.run(Update(spec("web", priority=5)))
    elif what == "task killed":
        h.run(Kill("web.alice"))
    elif what == "machine left":
        h.run(MachineDown("m1"))
    elif what == "machine shrank":
        h.run(RegisterMachine("m1", {"cpu": "500m", "memory": "8Gi"}, address="http://m1"))
    elif what == "room taken":
        h.submit("hog", cpu="4")  # planned and committed on its own, while web's plan is open
        rnd = h.core.snapshot(only={"0.hog.alice.local"})
        h.commit(rnd, h.core.scheduler.schedule(rnd.view, rnd.pending))
        assert h.task("hog").machine == "m1"


# (case, the change between snapshot and commit, the stale reason's start)
STALE = [
    ("a task updated while it was planned is stale", "task changed", "the task changed while it was being placed"),
    ("a task killed while it was planned is stale", "task killed", "the task changed while it was being placed"),
    ("a placement on a machine that left the cell is stale", "machine left", "machine m1 left the cell"),
    ("a placement on a machine that shrank below it is stale", "machine shrank",
     "task 0.web.alice.local does not fit on m1"),
    ("a placement whose room was taken by another commit is stale", "room taken",
     "task 0.web.alice.local does not fit on m1"),
]


@pytest.mark.parametrize("case,change,why", STALE, ids=[c[0] for c in STALE])
def test_a_placement_that_no_longer_holds_is_stale_and_commits_nothing(case, change, why):
    h = Harness()
    h.machine("m1")
    h.submit("web")
    rnd, plan = planned(h)
    assert [p.task_id for p in plan.placements] == [WEB]
    _change(h, change)
    seq = h.state.seq
    out = h.commit(rnd, plan)
    assert out.reply["placed"] == 0 and out.reply["stale"] == [WEB]
    assert out.events == [] and out.effects == [] and h.state.seq == seq
    task = h.task("web")
    assert task.state is not R
    if task.state is P:
        assert task.reason.startswith("its placement went stale (" + why)
        assert task.reason.endswith("; it will be placed again")
        assert WEB in h.core.queue.runnable


def preempting() -> Harness:
    """m1 is full of a batch job; a production job needs its room."""
    h = Harness()
    h.machine("m1", cpu="1")
    h.submit("low", cpu="1", priority=1)
    h.schedule()
    h.submit("high", cpu="1", priority=9)
    return h


def test_a_plan_that_preempts_kills_its_victim_and_places_the_task():
    h = preempting()
    rnd, plan = planned(h)
    assert [p.victim for p in plan.preemptions] == ["0.low.alice.local"]
    out = h.commit(rnd, plan)
    assert out.reply["preempted"] == 1 and out.reply["placed"] == 1
    assert [(e.TYPE, getattr(e, "via", None)) for e in out.events] == [("task_ended", "evict"),
                                                                      ("task_scheduled", None)]
    assert [e.task for e in out.effects if isinstance(e, KillTask)] == ["0.low.alice.local"]
    assert h.task("low").state is P and h.task("high").state is R


def test_a_placement_whose_preemption_victim_is_gone_is_stale():
    h = preempting()
    rnd, plan = planned(h)
    h.run(Kill("low.alice"))
    out = h.commit(rnd, plan)
    assert out.reply["stale"] == ["0.high.alice.local"] and out.events == [] and out.effects == []
    assert h.task("high").reason == ("its placement went stale (preemption victim 0.low.alice.local is no longer "
                                     "on m1); it will be placed again")


def test_an_unplaced_task_gets_its_reason_and_is_parked():
    h = Harness()
    h.machine("m1", cpu="1")
    h.submit("big", cpu="2")
    rnd, plan = planned(h)
    out = h.commit(rnd, plan)
    assert out.reply["unplaced"] == 1 and out.events == []
    assert "0/1 machines" in h.task("big").reason and h.task("big").explanation
    assert "0.big.alice.local" in h.core.queue.class_of


# (case, setup of the snapshot, the reason of the task left out)
LEFT_OUT = [
    ("an empty cell gives every task its reason instead of a plan", "no machines",
     "0/0 machines are available: the cell has no machines up."),
    ("an ordered job still waiting is not planned", "waiting", "waiting for job prep to succeed (it is pending)"),
]


@pytest.mark.parametrize("case,setup,reason", LEFT_OUT, ids=[c[0] for c in LEFT_OUT])
def test_a_snapshot_leaves_out_what_cannot_be_planned_with_its_reason(case, setup, reason):
    h = Harness()
    if setup == "waiting":
        h.machine("m1", cpu="1")
        h.submit("prep", cpu="2")  # never fits: it stays pending
    h.submit("web", **({"after": "prep"} if setup == "waiting" else {}))
    rnd = h.core.snapshot()
    rnd.view.release()
    assert WEB not in [p.id for p in rnd.pending]
    assert h.task("web").reason == reason


def test_a_failed_over_task_is_planned_away_from_the_machines_it_failed_on():
    h = Harness()
    h.machine("m1")
    h.machine("m2")
    h.submit("web")
    h.schedule()
    first = h.task("web").machine
    task = h.task("web")
    h.run(AgentReport(first, [{"task_id": task.name, "generation": task.generation, "state": "failed"}]))
    rnd, plan = planned(h)
    assert [p.machine for p in plan.placements] == [{"m1": "m2", "m2": "m1"}[first]]


def test_try_fit_says_why_a_task_does_not_fit_and_leaves_the_view_as_it_was():
    h = Harness()
    h.machine("m1", cpu="1")
    h.submit("web", cpu="2")
    h.submit("small", cpu="1")
    free = h.state.view.free.copy()
    assert "m1" in (try_fit(h.state, h.task("web"), "m1", (), []) or "")
    assert try_fit(h.state, h.task("small"), "m1", (), []) is None
    assert (h.state.view.free == free).all() and not h.state.view.where


def test_readable_names_the_machines_a_task_failed_on():
    assert readable("constraint corral.machine not in (m1, m2)") == "where it failed before (m1, m2)"
