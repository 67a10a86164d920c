"""The cell view keeps each user's usage as tasks come and go (what DRF reads), equal to a scan."""

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.sched.cellview import CellView, PlacementError
from corral.sched.request import PlacedTask
from corral.sched.testing import machine, request

REQS = [request(cpu=1, memory_gib=1), request(cpu=2, memory_gib=4), request(cpu=0.5, memory_gib=8)]
ops_st = st.lists(st.tuples(st.sampled_from(["place", "copies", "remove", "snapshot"]), st.integers(0, 2),
                            st.sampled_from(["alice", "bob", "carol"]), st.integers(0, 3), st.integers(1, 3)),
                  max_size=40)


def _scan(view: CellView) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(4, dtype=np.int64))
    for tasks in view.tasks:
        for task in tasks.values():
            out[task.user] = out[task.user] + task.request.vector
    return out


def _check(view: CellView) -> None:
    scanned = _scan(view)
    for user in set(scanned) | set(view.user_row):
        expected = scanned.get(user, np.zeros(4, dtype=np.int64))
        assert np.array_equal(view.usage_of(user), expected), user


@settings(max_examples=120, deadline=None)
@given(ops_st)
def test_per_user_usage_matches_a_scan_of_the_tasks_through_places_removals_and_snapshots(ops):
    view = CellView([machine(f"m{i}", cpu=8, memory_gib=32) for i in range(4)])
    views = [view]
    n = 0
    for op, r, user, m, count in ops:
        target = views[-1]
        if op == "snapshot":
            views.append(target.copy())
            continue
        try:
            if op == "place":
                target.place(PlacedTask(f"t{n}", "j", user, REQS[r]), m)
            elif op == "copies":
                target.place_copies([PlacedTask(f"t{n}-{k}", "j", user, REQS[r]) for k in range(count)], m)
            elif target.where:
                target.remove(sorted(target.where.flatten() if hasattr(target.where, "flatten") else target.where)[0])
        except PlacementError:
            pass
        n += 1
        for v in views:
            _check(v)


def test_a_snapshot_counts_its_own_placements_only():
    view = CellView([machine("m0")])
    view.place(PlacedTask("a/0", "a", "alice", REQS[0]), 0)
    snap = view.copy()
    snap.place(PlacedTask("b/0", "b", "bob", REQS[1]), 0)
    assert not view.usage_of("bob").any()
    assert np.array_equal(snap.usage_of("bob"), REQS[1].vector)
    assert view.removals == snap.removals == 0
    snap.remove("a/0")
    assert snap.removals == 1 and not snap.usage_of("alice").any()
    assert np.array_equal(view.usage_of("alice"), REQS[0].vector)
