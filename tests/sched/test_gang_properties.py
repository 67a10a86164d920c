"""Properties of gang placement: whatever the cell, the running work and the mix of gangs and
single tasks, a plan holds 0 or at least ``gang`` of every gang's tasks, and the view it leaves is
exactly the running work less the plan's victims plus the plan's placements (a rolled-back gang
leaves no trace: free resources, GPUs, per-user usage)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.sched.cellview import CellView
from corral.sched.request import PendingTask, PlacedTask
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.testing import machine, request

SHAPES = [request(cpu=c, memory_gib=m, priority=p, gpu=g)
          for c, m, p, g in [(2, 2, 2, 0), (4, 8, 2, 0), (8, 8, 2, 0), (1, 1, 10, 0), (4, 4, 10, 0), (2, 2, 6, 1),
                             (8, 16, 0, 0)]]

JOB = st.tuples(st.integers(0, len(SHAPES) - 1), st.integers(1, 5), st.integers(0, 5), st.sampled_from("abc"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machines=st.integers(1, 6), running=st.lists(st.integers(0, len(SHAPES) - 1), max_size=10),
       jobs=st.lists(JOB, min_size=1, max_size=6), relaxed=st.booleans(), reserve=st.sampled_from([None, 0, 2]),
       passes=st.integers(1, 3))
def test_a_plan_never_holds_part_of_a_gang_and_a_rollback_leaves_no_trace(machines, running, jobs, relaxed,
                                                                             reserve, passes):
    view = CellView([machine(f"m{i}", cpu=8, memory_gib=16, gpus=2) for i in range(machines)])
    on: dict[str, tuple[PlacedTask, int]] = {}
    for n, shape in enumerate(running):  # first machine with room; the rest is left out
        req = SHAPES[shape]
        for at in range(machines):
            gpus = tuple(np.flatnonzero(view.gpu_idle[at] >= 1000)[: req.gpu].tolist())
            if (view.free[at] >= req.vector).all() and len(gpus) == req.gpu:
                task = PlacedTask(f"r{n}/0", f"r{n}", "bob", req, gpus)
                view.place(task, at)
                on[task.id] = (task, at)
                break
    pending = []
    for j, (shape, tasks, need, user) in enumerate(jobs):
        need = min(need, tasks)
        pending += [PendingTask(f"j{j}/{i}", f"j{j}", user, SHAPES[shape], i, float(j), need) for i in range(tasks)]
    scheduler = Scheduler(SchedulerConfig(relaxed_randomization=relaxed, gang_reserve_after=reserve))
    for _ in range(passes):  # several passes on copies: waits build up and reservations apply
        snapshot = view.copy()
        plan = scheduler.schedule(snapshot, pending)
        snapshot.release()
    placed = Counter(p.task_id.split("/")[0] for p in plan.placements)
    for j, (_, tasks, need, _) in enumerate(jobs):
        need = min(need, tasks)
        if need:
            assert placed[f"j{j}"] == 0 or placed[f"j{j}"] >= need, (j, placed[f"j{j}"], need)
    for task in pending:
        assert (task.id in plan.placed_on()) != (task.id in plan.unplaced)
    # the snapshot is the running work less the victims plus the placements, nothing else
    victims = {p.victim for p in plan.preemptions}
    assert victims <= on.keys()
    expected = CellView([machine(f"m{i}", cpu=8, memory_gib=16, gpus=2) for i in range(machines)])
    for name, (task, at) in on.items():
        if name not in victims:
            expected.place(task, at)
    by_id = {t.id: t for t in pending}
    for p in plan.placements:
        t = by_id[p.task_id]
        expected.place(PlacedTask(t.id, t.job, t.user, t.request, p.gpus), expected.index[p.machine])
    assert set(snapshot.where.flatten()) == set(expected.where)
    assert np.array_equal(snapshot.free, expected.free)
    assert np.array_equal(snapshot.gpu_idle, expected.gpu_idle)
    for user in ("a", "b", "c", "bob"):
        assert np.array_equal(snapshot.usage_of(user), expected.usage_of(user)), user
