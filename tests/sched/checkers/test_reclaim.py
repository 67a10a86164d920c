"""Resources by band: production against limits, the rest against reservations (checkers/reclaim.py)."""

import numpy as np
import pytest

from corral.model.resources import DIMS
from corral.sched.cellview import CellView
from corral.sched.checkers import ResourcesFit
from corral.sched.checkers.reclaim import ReclaimableFit, fits_against_limits, with_reclamation
from corral.sched.context import EvalContext
from corral.sched.request import PlacedTask
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.testing import GiB, context, machine, occupy, pending, request


def cell_with_a_quiet_service(reserved_gib: float, reserved_cpu: float = 2) -> CellView:
    """One 8-core 32 GiB machine whose production service asks for 6 cores and 24 GiB and is
    reserved at ``reserved_cpu`` cores and ``reserved_gib``."""
    view = CellView([machine("m", cpu=8, memory_gib=32)])
    occupy(view, "m", request(cpu=6, memory_gib=24, priority=9), "web/0")
    view.set_reservation("web/0", np.array([int(reserved_cpu * 1000), int(reserved_gib * GiB), 0, 0]))
    return view


# Free by limits: 2 cores, 8 GiB. The task asks for 4 GiB.
CASES = [
    ("a batch task that fits only in the room reservations leave is feasible", 4, 2, (2, 16), True),
    ("a production task is checked against limits, so the same room is not for it", 4, 9, (2, 16), False),
    ("a monitoring task is placed against limits too", 4, 11, (2, 16), False),
    ("a best-effort task may use reclaimed room", 4, 0, (2, 16), True),
    ("a batch task larger than the reclaimed room does not fit", 7, 2, (2, 16), False),
    ("a batch task that fits against limits fits whatever the reservations", 1, 2, (6, 24), True),
    ("reservations at the limits leave no reclaimed room", 4, 2, (6, 24), False),
    ("a reservation above the limit counts as the limit", 4, 2, (60, 99), False),
]


@pytest.mark.parametrize("case, cpu, priority, reserved, feasible", CASES, ids=[c[0] for c in CASES])
def test_resources_are_checked_by_band(case, cpu, priority, reserved, feasible):
    view = cell_with_a_quiet_service(reserved[1], reserved[0])
    ctx = context(view, request(cpu=cpu, memory_gib=4, priority=priority))
    assert ReclaimableFit().check(ctx).tolist() == [feasible]


def test_with_no_reservation_below_a_limit_it_answers_as_resources_fit():
    view = CellView([machine("a", cpu=4), machine("b", cpu=1)])
    occupy(view, "b", request(cpu=0.5), "old/0")
    ctx = context(view, request(cpu=2))
    assert ReclaimableFit().check(ctx).tolist() == ResourcesFit().check(ctx).tolist() == [True, False]


def test_a_rejected_batch_task_is_blamed_on_the_dimension_short_of_the_larger_room():
    view = cell_with_a_quiet_service(reserved_gib=22)  # 10 GiB of room by reservations, 8 free by limits
    ctx = context(view, request(cpu=1, memory_gib=12, priority=2))
    rejected = ~ReclaimableFit().check(ctx)
    assert ReclaimableFit().reasons(ctx, rejected) == {"insufficient memory": 1}


def test_what_if_copies_each_reserve_their_limit():
    view = cell_with_a_quiet_service(reserved_gib=8)  # room: 6 cores, 24 GiB
    req = request(cpu=1, memory_gib=5, priority=2)
    free = view.free[[0, 0, 0, 0, 0]] - np.arange(1, 6)[:, None] * req.vector  # after 1..5 copies
    ctx = EvalContext(view, req, np.zeros(5, dtype=np.int64), free=free)
    # after k copies 24 - 5k GiB of room are left, and one more copy needs 5 GiB
    assert ReclaimableFit().check(ctx).tolist() == [True, True, True, False, False]


def test_set_reservation_keeps_the_reserved_totals_equal_to_the_sum_of_the_tasks():
    view = CellView([machine("a"), machine("b")])
    occupy(view, "a", request(cpu=2, memory_gib=4), "t1")
    occupy(view, "a", request(cpu=1, memory_gib=2), "t2")
    occupy(view, "b", request(cpu=3, memory_gib=8, priority=9), "t3")
    before = view.version.copy()
    assert view.set_reservation("t1", np.array([500, GiB, 0, 0]))
    assert view.version[0] > before[0] and view.version[1] == before[1]
    assert not view.set_reservation("t1", np.array([500, GiB, 0, 0]))  # unchanged: no new version
    assert not view.set_reservation("t3", np.array([10_000, 99 * GiB, 0, 0]))  # capped at its limit: unchanged
    assert view.reserving_below_limit == 1
    snapshot = view.copy()
    view.remove("t2")
    occupy(view, "a", request(cpu=1, memory_gib=1), "t4")
    view.set_reservation("t4", np.array([100, GiB // 2, 0, 0]))
    for v in (view, snapshot):
        want = np.zeros_like(v.reserved)
        for m, tasks in enumerate(v.tasks):
            for task in tasks.values():
                want[m] += task.reservation
        assert np.array_equal(v.reserved, want)
    assert snapshot.tasks[0]["t1"].reserved.tolist() == [500, GiB, 0, 0]
    view.remove("t1")
    view.remove("t4")
    assert view.reserving_below_limit == 0
    assert view.reserved[0].tolist() == [0] * len(DIMS)


def test_a_reclaimed_task_may_be_placed_past_the_limits_and_gives_everything_back():
    view = cell_with_a_quiet_service(reserved_gib=8)
    task = PlacedTask("batch/0", "batch", "bob", request(cpu=4, memory_gib=16, priority=2), reclaimed=True)
    view.place(task, 0)
    assert view.free[0, 1] == -8 * GiB and view.reclaim_room(0)[1] == 8 * GiB  # 32 - 24 - 16; 32 - 8 - 16
    view.remove("batch/0")
    assert view.free[0, 1] == 8 * GiB


def test_the_scheduler_marks_the_copies_beyond_the_limits_as_reclaimed():
    view = cell_with_a_quiet_service(reserved_gib=8)  # free by limits: 2 cores, 8 GiB; room: 6, 24
    plan = Scheduler(SchedulerConfig(relaxed_randomization=False)).schedule(view, pending(request(cpu=1, memory_gib=4), 5))
    assert [p.reclaimed for p in plan.placements] == [False, False, True, True, True]
    assert [t.reclaimed for t in view.tasks[0].values() if t.job == "job"] == [False, False, True, True, True]
    assert not plan.unplaced


def test_production_is_never_placed_in_reclaimed_room():
    view = cell_with_a_quiet_service(reserved_gib=8)
    plan = Scheduler(SchedulerConfig(preemption=False)).schedule(view, pending(request(cpu=1, memory_gib=4, priority=9), 3))
    assert [p.reclaimed for p in plan.placements] == [False, False]
    assert "insufficient" in plan.unplaced["job/2"].summary()


def test_the_cell_option_turns_reclamation_off():
    view = cell_with_a_quiet_service(reserved_gib=8)
    plan = Scheduler(SchedulerConfig(reclamation=False)).schedule(view, pending(request(cpu=1, memory_gib=4), 5))
    assert len(plan.placements) == 2 and not any(p.reclaimed for p in plan.placements)
    assert (view.free >= 0).all()


def test_a_batch_task_may_preempt_into_reclaimed_room_counting_victims_reservations():
    # 8 GiB free by limits; a best-effort task holds 8 GiB but is reserved at 2: evicting it gives
    # back 2 GiB of room (its reservation), 8 GiB against limits.
    view = cell_with_a_quiet_service(reserved_gib=8)  # room 24 - 8 = 16 before the best-effort task
    occupy(view, "m", request(cpu=0.5, memory_gib=8, priority=0), "be/0")
    view.set_reservation("be/0", np.array([100, 2 * GiB, 0, 0]))  # room: 32 - 8 - 2 = 22 GiB
    config = SchedulerConfig(relaxed_randomization=False)
    plan = Scheduler(config).schedule(view, pending(request(cpu=1, memory_gib=23, priority=5)))
    assert [p.victim for p in plan.preemptions] == ["be/0"] and plan.placements[0].reclaimed  # 22 + 2 >= 23
    view2 = cell_with_a_quiet_service(reserved_gib=8)
    occupy(view2, "m", request(cpu=0.5, memory_gib=8, priority=0), "be/0")
    view2.set_reservation("be/0", np.array([100, 2 * GiB, 0, 0]))
    plan2 = Scheduler(config).schedule(view2, pending(request(cpu=1, memory_gib=25, priority=5)))
    assert not plan2.placements and not plan2.preemptions  # 24 < 25: its limit (8) would not count


def test_with_reclamation_swaps_the_resources_checker_both_ways():
    on = with_reclamation([ResourcesFit()], True)
    assert type(on[0]) is ReclaimableFit
    assert type(with_reclamation(on, False)[0]) is ResourcesFit


@pytest.mark.parametrize("free, vector, copies", [
    ([4000, 8, 0, 0], [1000, 2, 0, 0], 4),
    ([4000, 3, 0, 0], [1000, 2, 0, 0], 1),
    ([-500, 8, 0, 0], [1000, 2, 0, 0], 0),
])
def test_copies_that_fit_against_limits(free, vector, copies):
    assert fits_against_limits(np.array(free), np.array(vector)) == copies
