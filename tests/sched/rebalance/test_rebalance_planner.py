"""The rebalancer's pure planning policy on hand-built cells."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from corral.sched.cellview import CellView
from corral.sched.policy import make_policy
from corral.sched.rebalance.budget import BudgetLedger, DisruptionBudget, JobBudget
from corral.sched.rebalance.fragmentation import GpuFragmentation, cell_fragmentation
from corral.sched.rebalance.moves import START_FIRST
from corral.sched.rebalance.planner import RebalanceConfig, plan_moves
from corral.sched.rebalance.free_room import copies_now
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.scorers.fgd import TypicalPods
from corral.sched.testing import machine, occupy, pending, request

ON = RebalanceConfig(enabled=True, max_moves=16)


def gpu_cell(n: int = 4) -> CellView:
    return CellView([machine(f"m{i}", cpu=64, memory_gib=256, gpus=8) for i in range(n)])


def one_gpu_tasks_spread(view: CellView, per_machine: int = 2, job_of=lambda i, k: f"small{i}-{k}"):
    one = request(cpu=1, memory_gib=1, gpu=1)
    jobs = {}
    for i in range(len(view)):
        for k in range(per_machine):
            job = job_of(i, k)
            occupy(view, f"m{i}", one, f"t{i}-{k}", job=job, gpus=(k,))
            jobs[job] = JobBudget(movable=True, tasks=1)
    return jobs


def test_a_move_frees_room_for_a_gang_that_fits_nowhere_otherwise():
    view = gpu_cell(4)
    jobs = one_gpu_tasks_spread(view)  # every machine has 6 free GPUs: no whole machine for the gang
    gang = request(cpu=8, memory_gib=8, gpu=8)
    policy = make_policy("hybrid")
    assert copies_now(view, policy, gang).sum() == 0
    plan = plan_moves(view, policy, BudgetLedger(jobs), [(gang, 2, "gang train.bob")], None, ON)
    assert plan.freed == ["gang train.bob"]
    assert copies_now(view, policy, gang).sum() >= 2
    assert plan.moves and all("to free 16 GPUs for gang train.bob" in m.reason for m in plan.moves)
    assert all(m.order == START_FIRST for m in plan.moves)
    # and the scheduler now places the whole gang
    out = Scheduler(SchedulerConfig(relaxed_randomization=False), policy=policy).schedule(
        view, [p.__class__(p.id, p.job, p.user, p.request, p.index, gang=2) for p in pending(gang, 2, job="train")])
    assert len(out.placements) == 2


def test_non_movable_tasks_never_move_and_no_moves_are_wasted():
    view = gpu_cell(4)
    jobs = one_gpu_tasks_spread(view)
    jobs = {j: JobBudget(movable=False, tasks=1) for j in jobs}
    gang = request(cpu=8, memory_gib=8, gpu=8)
    where = dict(view.where)
    plan = plan_moves(view, make_policy("hybrid"), BudgetLedger(jobs), [(gang, 1, "gang g")], None, ON)
    assert plan.moves == [] and plan.freed == []
    assert dict(view.where) == where


def test_pinned_tasks_never_move_for_either_goal():
    view = gpu_cell(4)
    jobs = one_gpu_tasks_spread(view)
    gang = request(cpu=8, memory_gib=8, gpu=8)
    pinned = frozenset(view.where)  # every placed task: nothing may move, whatever the budgets
    where = dict(view.where)
    plan = plan_moves(view, make_policy("hybrid"), BudgetLedger(jobs, pinned=pinned), [(gang, 1, "gang g")], None, ON)
    assert plan.moves == [] and dict(view.where) == where
    view = gpu_cell(2)
    share = request(cpu=1, memory_gib=1, gpu=1, gpu_milli=500)
    occupy(view, "m0", share, "a", job="a", gpus=(0,))
    occupy(view, "m1", share, "b", job="b", gpus=(0,))
    typical = TypicalPods(np.array([1000]), np.array([1000]), np.array([8]), ((),), np.array([1.0]))
    plan = plan_moves(view, make_policy("hybrid"), BudgetLedger({"a": JobBudget(True), "b": JobBudget(True)},
                                                                pinned=frozenset({"a", "b"})),
                      [], GpuFragmentation(typical), RebalanceConfig(enabled=True, max_moves=4, free_room=False))
    assert plan.moves == []


def test_a_gang_that_cannot_get_enough_room_gets_no_moves():
    view = gpu_cell(2)
    jobs = one_gpu_tasks_spread(view, per_machine=7)  # 14 GPUs used of 16: never room for 2 x 8
    gang = request(cpu=8, memory_gib=8, gpu=8)
    where = dict(view.where)
    plan = plan_moves(view, make_policy("hybrid"), BudgetLedger(jobs), [(gang, 2, "gang g")], None, ON)
    assert plan.moves == [] and dict(view.where) == where


def typical_one_gpu() -> TypicalPods:
    return TypicalPods(np.array([1000]), np.array([1000]), np.array([4]), ((),), np.array([1.0]))


def test_fragmentation_does_not_increase_after_a_pass_and_falls_when_a_move_helps():
    view = gpu_cell(3)
    jobs = one_gpu_tasks_spread(view, per_machine=1)  # one GPU used on each machine
    measure = GpuFragmentation(typical_one_gpu())
    before = cell_fragmentation(measure, view)
    plan = plan_moves(view, make_policy("hybrid"), BudgetLedger(jobs), [], measure,
                      RebalanceConfig(enabled=True, max_moves=8, free_room=False))
    after = cell_fragmentation(measure, view)
    assert after <= before
    assert plan.stats["fragmentation_after"] == after


def test_defragment_moves_a_lone_share_onto_a_busy_machine():
    view = gpu_cell(2)
    share = request(cpu=1, memory_gib=1, gpu=1, gpu_milli=500)
    occupy(view, "m0", share, "a", job="a", gpus=(0,))
    occupy(view, "m1", share, "b", job="b", gpus=(0,))
    jobs = {"a": JobBudget(True), "b": JobBudget(True)}
    typical = TypicalPods(np.array([1000]), np.array([1000]), np.array([8]), ((),), np.array([1.0]))
    measure = GpuFragmentation(typical)
    before = cell_fragmentation(measure, view)
    plan = plan_moves(view, make_policy("hybrid"), BudgetLedger(jobs), [], measure,
                      RebalanceConfig(enabled=True, max_moves=4, free_room=False))
    assert len(plan.moves) == 1 and cell_fragmentation(measure, view) < before
    assert "to lower fragmentation by" in plan.moves[0].reason
    assert view.gpu_idle[view.index[plan.moves[0].source]].sum() == 8000  # a whole 8-GPU machine again


@settings(max_examples=40, deadline=None)
@given(max_moving=st.integers(0, 3), pct=st.one_of(st.none(), st.integers(0, 100)),
       per_job=st.integers(1, 6), seed=st.integers(0, 1000))
def test_the_disruption_budget_is_never_exceeded(max_moving, pct, per_job, seed):
    view = gpu_cell(4)
    rng = np.random.default_rng(seed)
    jobs = one_gpu_tasks_spread(view, per_machine=3, job_of=lambda i, k: f"j{(i * 3 + k) // per_job}")
    budget = DisruptionBudget(max_moving=max_moving, max_unavailable_pct=pct)
    sizes = {j: sum(1 for m in view.tasks for t in m.values() if t.job == j) for j in jobs}
    jobs = {j: JobBudget(True, budget, tasks=sizes[j], pending=int(rng.integers(0, 2))) for j in jobs}
    gang = request(cpu=8, memory_gib=8, gpu=8)
    ledger = BudgetLedger(jobs)
    plan = plan_moves(view, make_policy("hybrid"), ledger, [(gang, int(rng.integers(1, 4)), "gang g")],
                      GpuFragmentation(typical_one_gpu()), RebalanceConfig(enabled=True, max_moves=20))
    for j, info in jobs.items():
        moved = sum(1 for m in plan.moves if m.job == j)
        assert moved <= max_moving
    assert len(plan.moves) <= 20


@settings(max_examples=100, deadline=None)
@given(max_moving=st.one_of(st.none(), st.integers(0, 4)), pct=st.one_of(st.none(), st.integers(0, 100)),
       tasks=st.integers(1, 20), pending=st.integers(0, 5),
       attempts=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.booleans()), max_size=30))
def test_the_ledger_never_lets_a_job_past_either_limit(max_moving, pct, tasks, pending, attempts):
    budget = DisruptionBudget(max_moving=max_moving, max_unavailable_pct=pct)
    ledger = BudgetLedger({j: JobBudget(True, budget, tasks=tasks, pending=min(pending, tasks)) for j in "ab"})
    for job, stop_first in attempts:
        if ledger.can_move(job, stop_first):
            ledger.charge(job, stop_first)
        else:
            with pytest.raises(ValueError):
                ledger.charge(job, stop_first)
        for j in "ab":
            if max_moving is not None:
                assert ledger.moving.get(j, 0) <= max_moving
            down = budget.down_allowed(tasks)
            if down is not None and ledger.stopped.get(j, 0):
                assert min(pending, tasks) + ledger.stopped[j] <= down
