"""Parking: a pending task a round found no room for sits out later rounds, in its equivalence class,
until a changed machine has room for its class at its preemption level, or ``unpark_after_s`` passed
(Kubernetes' unschedulable queue, keyed per class like Nomad's blocked evaluations)."""

from corral.master.commands import AgentReport, Kill, Update
from corral.model.job import TaskState

from tests.master.helpers import Harness, spec

P, R = TaskState.PENDING, TaskState.RUNNING


def finish(h, job, index=0):
    task = h.task(job, index)
    h.run(AgentReport(task.machine, [{"task_id": task.name, "state": "finished", "generation": task.generation}]))


def big_behind_a():
    """A 4-core machine and two 3-core jobs submitted, a then big: only one of them fits."""
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="3")
    h.submit("big", cpu="3")
    return h


def parked(h, job, user="alice"):
    return {n for n in h.core.queue.class_of if h.state.tasks[n].job == f"{job}.{user}"}


def test_a_task_that_found_no_room_is_parked_with_its_reason_and_left_out_of_rounds():
    h = big_behind_a()
    h.schedule()
    assert h.task("a").state is R and h.task("big").state is P
    assert parked(h, "big") == {h.task("big").name}
    assert h.task("big").name not in h.core.queue.runnable
    assert h.task("big").reason.startswith("0/1 machines are available")
    rnd = h.core.snapshot()
    assert [t.id for t in rnd.pending] == []  # the round does not look at it


def test_room_freed_on_a_machine_unparks_it_and_the_next_round_places_it():
    h = big_behind_a()
    h.schedule()
    finish(h, "a")
    h.schedule()
    assert h.task("big").state is R and not h.core.queue.class_of


def test_a_change_that_leaves_too_little_room_keeps_it_parked():
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="2")
    h.submit("b", cpu="1")
    h.schedule()
    h.submit("big", cpu="4")
    h.schedule()
    assert parked(h, "big")
    finish(h, "b")  # 2 cores free: still less than 4
    h.schedule()
    assert parked(h, "big") and h.task("big").state is P
    finish(h, "a")
    h.schedule()
    assert h.task("big").state is R


def test_room_at_its_preemption_level_counts_free_plus_what_it_may_preempt():
    # Production may evict batch: a batch task arriving takes free room but not room at
    # production's level, so it does not wake a parked production task; a production task
    # leaving does.
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("p1", cpu="3", priority=9)
    h.schedule()
    h.submit("p2", cpu="2", priority=9)
    h.schedule()
    assert parked(h, "p2")
    h.submit("batch", cpu="1", priority=2)
    h.schedule()
    assert h.task("batch").state is R and parked(h, "p2")
    h.run(Kill("p1.alice"))
    h.schedule()
    assert h.task("p2").state is R


def test_every_parked_task_gets_a_new_look_after_unpark_after_s():
    h = big_behind_a()
    h.core.unpark_after_s = 60.0
    h.schedule()
    h.clock.advance(30)
    h.core.snapshot()
    assert parked(h, "big")
    h.clock.advance(31)
    rnd = h.core.snapshot()
    assert [t.id for t in rnd.pending] == [h.task("big").name] and not h.core.queue.class_of


def test_an_update_or_a_new_machine_unparks():
    h = big_behind_a()
    h.submit("other", cpu="4")
    h.schedule()
    assert parked(h, "big") and parked(h, "other")
    h.run(Update(spec("big", cpu="1")))
    h.schedule()
    assert h.task("big").state is R
    h.machine("m2", cpu="4")
    h.schedule()
    assert h.task("other").state is R and not h.core.queue.class_of


def test_a_parked_task_that_leaves_pending_leaves_the_parking_too():
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="3")
    h.submit("big", cpu="3", tasks=2)
    h.schedule()
    assert len(parked(h, "big")) == 2
    h.run(Kill("big.alice"))
    assert not h.core.queue.class_of and not any("big" in n for n in h.core.queue.runnable)


def test_a_finish_wakes_only_as_many_tasks_as_the_freed_room_holds():
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="2", tasks=2)
    h.submit("wide", cpu="1", tasks=10)
    h.schedule()
    assert len(parked(h, "wide")) == 10
    finish(h, "a", 0)  # 2 cores free: room for 2 of the 10
    rnd = h.core.snapshot()
    assert len(rnd.pending) == 2 and len(parked(h, "wide")) == 8
    h.commit(rnd, h.core.scheduler.schedule(rnd.view, rnd.pending))
    assert sum(h.task("wide", i).state is R for i in range(10)) == 2


def test_freed_room_wakes_every_class_that_may_fit_whatever_its_shape_and_the_round_decides():
    # 2 cores free up: room for one 2-core task or one (2-core, 2Gi) task, not both. Both classes
    # may fit, so both wake; the round places the higher priority and parks the other again with a
    # reason that describes the cell after that placement.
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="2", tasks=2, priority=9)  # production: the batch jobs cannot preempt it
    h.submit("low", cpu="2", memory="1Gi", priority=3)
    h.submit("high", cpu="2", memory="2Gi", priority=6)
    h.schedule()
    assert parked(h, "low") and parked(h, "high")
    finish(h, "a", 0)
    rnd = h.core.snapshot()
    assert sorted(t.id for t in rnd.pending) == sorted([h.task("high").name, h.task("low").name])
    h.commit(rnd, h.core.scheduler.schedule(rnd.view, rnd.pending))
    assert h.task("high").state is R and parked(h, "low")
    assert h.task("low").reason.startswith("0/1 machines are available: 1 insufficient cpu")


def test_freed_room_places_parked_tasks_of_another_users_shape_at_once():
    # The one-machine cell: a large task of bob's ends and frees 5 cores; alice's parked
    # 1-core tasks (another shape, another user) fit and are placed by the next round, not after
    # the 5-minute flush, and what `why` says of the tasks left matches the machine.
    h = Harness()
    h.machine("m1", cpu="6")
    h.submit("big", user="bob", cpu="5")
    h.schedule()
    h.submit("huge", user="carol", cpu="6")
    h.submit("small", user="alice", cpu="1", tasks=7)
    h.schedule()
    assert len(parked(h, "small")) == 6 and parked(h, "huge", "carol")
    big = h.task("big", user="bob")
    h.run(AgentReport("m1", [{"task_id": big.name, "state": "finished", "generation": big.generation}]))
    h.schedule()
    assert sum(h.task("small", i).state is R for i in range(7)) == 6
    assert len(parked(h, "small")) == 1 and parked(h, "huge", "carol")
    for task in (h.task("small", 6), h.task("huge", user="carol")):
        reason, _ = h.core.pending_reason(task)
        assert reason.startswith("0/1 machines are available: 1 insufficient cpu"), reason


def test_a_parked_reason_is_explained_again_when_the_cell_changed_since():
    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi")
    h.submit("a", cpu="3", memory="1Gi")
    h.submit("wide", cpu="2", memory="1Gi")
    h.schedule()
    assert h.task("wide").reason.endswith("1 insufficient cpu.") or "insufficient cpu" in h.task("wide").reason
    # Another job takes memory without freeing cpu: the class stays parked (no room), but what the
    # cell lacks for it changed, and the reason read now says so.
    h.submit("fat", cpu="1", memory="7Gi")
    h.schedule()
    assert parked(h, "wide")
    reason, record = h.core.pending_reason(h.task("wide"))
    assert "insufficient cpu" in reason and record is not None
    fresh = h.core.scheduler.explain(h.state.view, h.state.jobs["wide.alice"].request)
    assert reason == fresh.summary()
