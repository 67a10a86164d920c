"""Invariants of the scheduler, checked by hypothesis over random cells and workloads."""

from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.model.priority import is_production
from corral.sched.cellview import CellView
from corral.sched.request import PendingTask
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.testing import machine, occupy, request

NAIVE = dict(equivalence_classes=False, score_cache=False, relaxed_randomization=False)

machines_st = st.lists(
    st.tuples(
        st.sampled_from([2, 4, 8, 16]),  # cpu
        st.sampled_from([4, 16, 32]),  # memory GiB
        st.sampled_from([0, 0, 0, 2]),  # gpus
        st.sampled_from(["r1", "r2", "r3"]),  # rack
    ),
    min_size=1,
    max_size=10,
)
jobs_st = st.lists(
    st.tuples(
        st.sampled_from([0.5, 1, 2, 3, 6]),  # cpu
        st.sampled_from([1, 2, 8, 12]),  # memory GiB
        st.sampled_from([0, 1, 2, 4, 6, 8, 9, 10, 11]),  # priority
        st.integers(1, 8),  # tasks
        st.sampled_from(["alice", "bob", "carol"]),
        st.sampled_from(["none", "gpu-share", "gpu", "rack!=r1", "spread", "limit", "prefer"]),
    ),
    min_size=1,
    max_size=8,
)


def _cell(machines):
    return [machine(f"m{i}", cpu, mem, gpus, "T4" if gpus else "", rack=rack) for i, (cpu, mem, gpus, rack) in enumerate(machines)]


def _work(jobs, prefix="j"):
    out = []
    for n, (cpu, mem, priority, count, user, extra) in enumerate(jobs):
        job = f"{prefix}{n}"
        kwargs = {
            "gpu-share": dict(gpu=1, gpu_milli=500),
            "gpu": dict(gpu=1),
            "rack!=r1": dict(constraints=("rack != r1",)),
            "spread": dict(spread="rack", job=job),
            "limit": dict(max_per_domain=(("rack", 1),), job=job),
            "prefer": dict(preferences=(("rack == r2", 1.0),)),
        }.get(extra, {})
        req = request(cpu=cpu, memory_gib=mem, priority=priority, **kwargs)
        out += [PendingTask(f"{job}/{i}", job, user, req, i, submitted=n) for i in range(count)]
    return out


def _run(machines, running_jobs, jobs, **config):
    view = CellView(_cell(machines))
    # Fill part of the cell first so that preemption has victims.
    first = Scheduler(SchedulerConfig(seed=3, **config)).schedule(view, _work(running_jobs, "old"))
    plan = Scheduler(SchedulerConfig(seed=7, **config)).schedule(view, _work(jobs))
    return view, first, plan


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(machines_st, jobs_st, jobs_st, st.sampled_from(["hybrid", "best-fit", "worst-fit", "random"]))
def test_scheduler_invariants(machines, running_jobs, jobs, policy):
    view, first, plan = _run(machines, running_jobs, jobs, policy=policy)
    work = {t.id: t for t in _work(jobs)}

    # No machine is ever over-committed (at limit, production included), GPUs included.
    assert (view.free >= 0).all()
    assert (view.gpu_idle >= 0).all()
    assert np.array_equal(view.free, view.capacity - view.used.sum(axis=0))
    prod = defaultdict(lambda: np.zeros(4, dtype=np.int64))
    for m, tasks in enumerate(view.tasks):
        for task in tasks.values():
            if is_production(task.priority):
                prod[m] += task.request.vector
    for m, used in prod.items():
        assert (used <= view.capacity[m]).all()

    # A task is never placed twice, and every task is either placed or explained.
    placed = [p.task_id for p in plan.placements]
    assert len(placed) == len(set(placed))
    assert set(placed).isdisjoint(plan.unplaced)
    assert set(placed) | set(plan.unplaced) == set(work)
    assert all(plan.unplaced[t].summary().endswith(".") for t in plan.unplaced)

    # Preemption never evicts equal or higher priority, nor production for production.
    for pre in plan.preemptions:
        by = work[pre.by].request.priority
        victim = next(t for t in _work(running_jobs, "old") if t.id == pre.victim).request.priority
        assert victim < by
        assert not (is_production(victim) and is_production(by))
        assert pre.victim not in view.where


@PROPERTY
@given(machines_st, jobs_st, jobs_st)
def test_the_same_seed_gives_the_same_plan(machines, running_jobs, jobs):
    _, _, a = _run(machines, running_jobs, jobs)
    _, _, b = _run(machines, running_jobs, jobs)
    assert a.placements == b.placements and a.preemptions == b.preemptions
    assert {k: v.summary() for k, v in a.unplaced.items()} == {k: v.summary() for k, v in b.unplaced.items()}


@PROPERTY
@given(machines_st, jobs_st, st.sampled_from(["hybrid", "best-fit", "worst-fit"]))
def test_equivalence_classes_and_the_score_cache_do_not_change_any_placement(machines, jobs, policy):
    """With relaxed randomization off, classes, caching and batched copies are exact: the
    plan equals the naive one that scores every machine for every task."""
    view_fast, view_naive = CellView(_cell(machines)), CellView(_cell(machines))
    fast = Scheduler(SchedulerConfig(policy=policy, relaxed_randomization=False)).schedule(view_fast, _work(jobs))
    naive = Scheduler(SchedulerConfig(policy=policy, **NAIVE)).schedule(view_naive, _work(jobs))
    assert fast.placed_on() == naive.placed_on()
    assert np.array_equal(view_fast.free, view_naive.free)


def test_class_states_beyond_the_cache_size_are_forgotten_between_passes():
    view = CellView(_cell([(16, 32, 0, "r1")] * 4))
    scheduler = Scheduler(SchedulerConfig(cached_classes=3))
    for n in range(6):  # six distinct requests, one pass each
        scheduler.schedule(view, [PendingTask(f"t{n}", f"j{n}", "alice", request(cpu=0.1 * (n + 1)))])
        assert len(scheduler._states) <= 3
