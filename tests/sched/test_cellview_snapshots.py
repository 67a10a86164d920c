"""Snapshots (CellView.copy) are independent of the view they came from, whichever side changes,
before or after release(); per-machine task maps and the task -> machine map are shared until written."""

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.machine import Machine
from corral.model.resources import Resources
from corral.sched.cellview import CellView
from corral.sched.request import PlacedTask, TaskRequest

REQ = TaskRequest(Resources(cpu=1000, memory=2**30), priority=2)


def view(machines=3):
    return CellView([Machine(f"m{i}", Resources(cpu=4000, memory=8 * 2**30)) for i in range(machines)])


def contents(v):
    return ({k: v.where[k] for k in list(_keys(v))}, [sorted(t) for t in v.tasks], v.free.tolist(), len(v.where))


def _keys(v):
    return [name for tasks in v.tasks for name in tasks]


def test_a_snapshot_does_not_see_later_changes_of_the_live_view_nor_the_live_view_its_own():
    live = view()
    live.place(PlacedTask("a", "j", "u", REQ), 0)
    snap = live.copy()
    before = contents(snap)
    live.place(PlacedTask("b", "j", "u", REQ), 1)
    live.remove("a")
    assert contents(snap) == before and "a" in snap.where and "b" not in snap.where
    snap.place(PlacedTask("c", "j", "u", REQ), 2)
    snap.remove("a")
    assert "c" not in live.where and "b" in live.where and "a" not in live.where
    assert sorted(_keys(live)) == ["b"] and sorted(_keys(snap)) == ["c"]
    assert len(live.where) == 1 and len(snap.where) == 1


def test_after_release_the_live_view_writes_its_map_in_place():
    live = view()
    live.place(PlacedTask("a", "j", "u", REQ), 0)
    mapping = live.where
    snap = live.copy()
    live.place(PlacedTask("b", "j", "u", REQ), 1)
    assert live.where is not mapping  # copied: the open snapshot still reads the old map
    mapping = live.where
    snap2 = live.copy()
    snap2.release()
    live.place(PlacedTask("c", "j", "u", REQ), 1)
    # A released snapshot is done with (its map may follow the live view's); the open one is not.
    assert live.where is mapping and "c" not in snap.where and "b" not in snap.where


ops = st.lists(st.tuples(st.sampled_from(["live", "snap", "copy", "release"]), st.integers(0, 2),
                         st.integers(0, 5)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_snapshots_behave_like_deep_copies(steps):
    # Model: every view is checked against a plain dict of task -> machine kept beside it.
    views = {"live": (view(), {})}
    views["snap"] = (views["live"][0].copy(), {})
    for name, machine, task in steps:
        if name == "copy":
            v, model = views["live"]
            views["snap"] = (v.copy(), dict(model))
            continue
        if name == "release":
            if "snap" in views:
                views.pop("snap")[0].release()  # done with: not read again
            continue
        if name not in views:
            continue
        v, model = views[name]
        tid = f"t{task}"
        if tid in model:
            v.remove(tid)
            del model[tid]
        elif (v.free[machine] >= REQ.vector).all():
            v.place(PlacedTask(tid, "j", "u", REQ), machine)
            model[tid] = machine
        for w, m in views.values():
            assert {k: w.where[k] for k in m} == m and len(w.where) == len(m)
            assert sorted(_keys(w)) == sorted(m)
            assert all(w.tasks[mm].keys() == {k for k, x in m.items() if x == mm} for mm in range(3))


def test_failure_domain_counts_are_copied_on_write_and_forgotten_when_a_job_leaves():
    from dataclasses import replace

    machines = [Machine(f"m{i}", Resources(cpu=4000, memory=8 * 2**30), attributes={"rack": f"r{i % 2}"})
                for i in range(4)]
    live = CellView(machines)
    req = replace(REQ, job="j.u", max_per_domain=(("rack", 2),))
    live.place(PlacedTask("a", "j.u", "u", req), 0)
    snap = live.copy()
    snap.place(PlacedTask("b", "j.u", "u", req), 2)  # rack r0 again
    assert snap.job_domain_counts("j.u", "rack").tolist()[:2] == [2, 0]
    assert live.job_domain_counts("j.u", "rack").tolist()[:2] == [1, 0]
    live.place(PlacedTask("c", "j.u", "u", req), 1)
    assert snap.job_domain_counts("j.u", "rack").tolist()[:2] == [2, 0]
    assert live.job_domain_counts("j.u", "rack").tolist()[:2] == [1, 1]
    live.remove("a"), live.remove("c")
    assert ("j.u", "rack") not in live.domain_counts  # nothing of the job left on the live view
    assert snap.job_domain_counts("j.u", "rack").tolist()[:2] == [2, 0]
