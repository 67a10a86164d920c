"""Gangs in the scheduler: all of a gang's tasks in one plan or none, preemption only for a whole
gang, the gang's pending reason, and the reservation that keeps a big gang from starving."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from corral.sched.cellview import CellView
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.testing import machine, occupy, request
from corral.sched.request import PendingTask

WHOLE = request(cpu=8, memory_gib=8)  # a whole default machine (8 cores)


def gang(req, count, need=None, job="gang", user="alice"):
    need = count if need is None else need
    return [PendingTask(f"{job}/{i}", job, user, req, i, 0.0, need) for i in range(count)]


def alone(req, count, job="small", user="bob"):
    return [PendingTask(f"{job}/{i}", job, user, req, i) for i in range(count)]


CASES = [
    # (case, machines, running [(machine, id, request)], pending, placed ids expected, victims expected)
    ("a gang of 4 on 4 free machines is placed whole",
     4, [], gang(WHOLE, 4), {"gang/0", "gang/1", "gang/2", "gang/3"}, set()),
    ("a gang of 4 with room for 3 is not placed at all",
     4, [("m3", "x/0", request(cpu=1))], gang(WHOLE, 4), set(), set()),
    ("min_tasks 2 of 4 with room for 3 places 3",
     4, [("m3", "x/0", request(cpu=1))], gang(WHOLE, 4, need=2), {"gang/0", "gang/1", "gang/2"}, set()),
    ("min_tasks 3 of 4 with room for 2 places none",
     4, [("m2", "x/0", request(cpu=1)), ("m3", "x/1", request(cpu=1))], gang(WHOLE, 4, need=3), set(), set()),
    ("a production gang preempts batch work when that makes the whole gang fit",
     2, [("m0", "b/0", WHOLE), ("m1", "b/1", WHOLE)], gang(replace(WHOLE, priority=10), 2),
     {"gang/0", "gang/1"}, {"b/0", "b/1"}),
    ("a production gang evicts nobody when production work leaves it one machine short",
     2, [("m0", "b/0", WHOLE), ("m1", "p/0", replace(WHOLE, priority=9))], gang(replace(WHOLE, priority=10), 2),
     set(), set()),
    ("a failed gang gives its room back to the small work behind it",
     4, [("m3", "x/0", request(cpu=1))], gang(WHOLE, 4) + alone(request(cpu=4), 4),
     {"small/0", "small/1", "small/2", "small/3"}, set()),
]


@pytest.mark.parametrize("case, machines, running, tasks, placed, victims", CASES, ids=[c[0] for c in CASES])
def test_gang_is_placed_whole_or_not_at_all(case, machines, running, tasks, placed, victims):
    view = CellView([machine(f"m{i}") for i in range(machines)])
    for name, task_id, req in running:
        occupy(view, name, req, task_id)
    before_usage = {u: view.usage_of(u).tolist() for u in ("alice", "bob")}
    plan = Scheduler(SchedulerConfig(relaxed_randomization=False)).schedule(view, tasks)
    assert {p.task_id for p in plan.placements} == placed
    assert {p.victim for p in plan.preemptions} == victims
    gang_placed = [p for p in plan.placements if p.task_id.startswith("gang/")]
    if not gang_placed:  # rolled back: the view holds exactly what ran plus the small placements
        assert set(view.where) == {t for _, t, _ in running} | placed
        assert view.usage_of("alice").tolist() == before_usage["alice"]
        for task in tasks:
            if task.gang:
                assert plan.unplaced[task.id].gang.startswith("gang of")
    for task in tasks:  # every task is placed or explained
        assert (task.id in plan.placed_on()) != (task.id in plan.unplaced)


def test_the_pending_reason_speaks_of_the_gang():
    cell = [machine(f"m{i}", gpus=1) for i in range(5)] + [machine(f"n{i}", gpus=1) for i in range(3)]
    view = CellView(cell)
    for i in range(3):
        occupy(view, f"n{i}", request(cpu=1, gpu=1), f"x/{i}", gpus=(0,))
    plan = Scheduler().schedule(view, gang(request(cpu=1, gpu=1), 8))
    summary = plan.unplaced["gang/0"].summary()
    assert summary.startswith("gang of 8: 5 machines have 1 free GPU, 8 needed."), summary
    assert "One task alone: 5/8 machines are available: 3 no GPU with 1000m idle." in summary
    assert plan.unplaced["gang/0"].to_dict()["gang"].startswith("gang of 8")


def test_a_min_tasks_gang_says_how_many_of_its_tasks_must_go_together():
    view = CellView([machine("m0"), machine("m1")])
    plan = Scheduler().schedule(view, gang(WHOLE, 4, need=3))
    assert plan.unplaced["gang/0"].gang == (
        "gang of 3 (at least 3 of 4 pending tasks together): 2 machines have room for 1 task, 3 needed")


def test_victims_of_a_gang_that_still_would_not_fit_are_left_running():
    view = CellView([machine("m0"), machine("m1"), machine("m2")])
    occupy(view, "m0", WHOLE, "b/0")
    occupy(view, "m1", WHOLE, "b/1")
    occupy(view, "m2", replace(WHOLE, priority=9), "p/0")
    free = view.free.copy()
    plan = Scheduler().schedule(view, gang(replace(WHOLE, priority=10), 3))
    assert plan.placements == [] and plan.preemptions == []
    assert {"b/0", "b/1", "p/0"} == set(view.where)
    assert np.array_equal(view.free, free)


# ---- no starvation: the reservation ----------------------------------------------------------------


def _stream(rounds: int, reserve_after: int | None) -> int | None:
    """A gang of 4 whole machines on a 4-machine cell while 1-task jobs of half a machine arrive (3 a
    round) and each runs 3 rounds: the round the gang is placed in, or None."""
    view = CellView([machine(f"m{i}") for i in range(4)])
    scheduler = Scheduler(SchedulerConfig(gang_reserve_after=reserve_after))
    half = request(cpu=4, memory_gib=4)
    ends: dict[str, int] = {}
    waiting: list[PendingTask] = []
    big = gang(WHOLE, 4, user="carol")
    for i, slot in enumerate([0, 0, 1, 1, 2, 2, 0, 1]):  # a full cell whose tasks end at staggered rounds
        occupy(view, f"m{i // 2}", half, f"warm/{i}", job=f"warm{i}")
        ends[f"warm/{i}"] = slot + 1
    for rnd in range(rounds):
        for task_id in [t for t, end in ends.items() if end <= rnd]:
            view.remove(task_id)
            del ends[task_id]
        waiting += [PendingTask(f"s{rnd}-{k}/0", f"s{rnd}-{k}", f"user{k}", half, 0, float(rnd)) for k in range(3)]
        plan = scheduler.schedule(view, big + waiting)
        placed = {p.task_id for p in plan.placements}
        gang_placed = placed & {t.id for t in big}
        assert len(gang_placed) in (0, 4)  # never part of the gang
        if gang_placed:
            return rnd
        for p in plan.placements:
            ends[p.task_id] = rnd + 3
        waiting = [t for t in waiting if t.id not in placed]
    return None


def test_a_big_gang_behind_a_stream_of_small_jobs_starts_within_bounded_rounds():
    started = _stream(60, reserve_after=3)
    assert started is not None and started <= 3 + 3 + 2, started


def test_without_the_reservation_the_big_gang_starves():
    assert _stream(60, reserve_after=None) is None


def test_small_work_kept_off_held_machines_says_why():
    view = CellView([machine(f"m{i}") for i in range(2)])
    occupy(view, "m0", request(cpu=4), "x/0")
    scheduler = Scheduler(SchedulerConfig(gang_reserve_after=0))
    plan = scheduler.schedule(view, gang(WHOLE, 2, user="carol") + alone(request(cpu=4), 1))
    assert plan.placements == []
    assert "2 machines are held for gang gang (waiting 1 round)" in plan.unplaced["small/0"].summary()


def test_backfill_may_use_room_the_gang_does_not_need():
    view = CellView([machine("m0", cpu=16), machine("m1", cpu=16)])
    occupy(view, "m0", request(cpu=8), "x/0")
    scheduler = Scheduler(SchedulerConfig(gang_reserve_after=0))
    plan = scheduler.schedule(view, gang(request(cpu=12), 2, user="carol") + alone(request(cpu=4), 2))
    # the gang (12 cores a task, one a machine) cannot start while x/0 runs; m1 holds its 12 cores
    # and 4 more: one small task fits beside the reservation; m0 has 8 free, fewer than the 12 it
    # holds for the gang, so the other small task waits
    assert {p.task_id: p.machine for p in plan.placements} == {"small/0": "m1"}
