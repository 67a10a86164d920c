"""Parking: a pending task a round found no room for sits out later rounds until a changed machine
has room for it at its preemption level, or ``unpark_after_s`` passed (Kubernetes' unschedulable queue)."""

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


def parked(h, job):
    return set(h.state.parked.get(f"{job}.alice", ()))


def test_a_task_that_found_no_room_is_parked_with_its_reason_and_left_out_of_rounds():
    h = big_behind_a()
    h.schedule()
    assert h.task("a").state is R and h.task("big").state is P
    assert parked(h, "big") == {h.task("big").name}
    assert h.task("big").name not in h.state.runnable
    assert h.task("big").reason.startswith("0/1 machines are available")
    rnd = h.core.snapshot()
    assert [t.id for t in rnd.pending] == []  # the round does not look at it


def test_room_freed_on_a_machine_unparks_it_and_the_next_round_places_it():
    h = big_behind_a()
    h.schedule()
    finish(h, "a")
    h.schedule()
    assert h.task("big").state is R and not h.state.parked


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
    assert [t.id for t in rnd.pending] == [h.task("big").name] and not h.state.parked


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
    assert h.task("other").state is R and not h.state.parked


def test_a_parked_task_that_leaves_pending_leaves_the_parking_too():
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="3")
    h.submit("big", cpu="3", tasks=2)
    h.schedule()
    assert len(parked(h, "big")) == 2
    h.run(Kill("big.alice"))
    assert not h.state.parked and not any("big" in n for n in h.state.runnable)


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


def test_freed_room_wakes_the_highest_priority_parked_job_first_across_shapes():
    # 2 cores free up: room for one 2-core task or one (2-core, 2Gi) task, not both. The budget is
    # the most copies of one shape (1): the priority-6 job wakes, the priority-3 one stays parked.
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="2", tasks=2, priority=9)  # production: the batch jobs cannot preempt it
    h.submit("low", cpu="2", memory="1Gi", priority=3)
    h.submit("high", cpu="2", memory="2Gi", priority=6)
    h.schedule()
    assert parked(h, "low") and parked(h, "high")
    finish(h, "a", 0)
    rnd = h.core.snapshot()
    assert [t.id for t in rnd.pending] == [h.task("high").name] and parked(h, "low")
