"""The cell state's invariants, checked after every command in validate mode (tests, the simulator's
``--validate``): a broken one raises :class:`InvariantError` naming it."""

from __future__ import annotations

from typing import Any

import numpy as np

from corral.master.records import charge
from corral.model.job import JobState, TaskState
from corral.model.priority import Band
from corral.model.resources import DIMS

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


class InvariantError(AssertionError):
    """The state broke one of its invariants (validate mode)."""


def check(state: Any) -> None:
    """Check every invariant of ``state`` (a CellState); raise :class:`InvariantError` naming the first
    one broken."""
    def fail(message: str) -> None:
        raise InvariantError(message)

    # Limits over-commit a machine only by what reclaimed placements hold (they were placed against
    # reservations); the rest fits the machine's capacity.
    reclaimed = np.zeros_like(state.view.free)
    for task in state.tasks.values():
        if task.state is R and task.reclaimed:
            reclaimed[state.view.index[task.machine]] += task.request.vector
    for drain in state.draining.values():  # an old copy draining in reclaimed room (drains.py)
        if drain.reclaimed:
            reclaimed[state.view.index[drain.machine]] += drain.request.vector
    if (state.view.free + reclaimed < 0).any():
        fail("a machine is over-committed")
    if any(t.reclaimed and t.state is not R for t in state.tasks.values()):
        fail("a task that is not running is marked as placed in reclaimed room")
    live: dict[str, list[int]] = {}
    for task in state.tasks.values():
        counts = live.setdefault(task.job, [0, 0])
        counts[0] += task.state is P
        counts[1] += task.state is R
    for jid, counts in live.items():
        if list(state.job_live.get(jid, (0, 0))) != counts:
            fail(f"job {jid} counts {state.job_live.get(jid)} pending/running tasks, its tasks say {counts}")
    for name, task in state.tasks.items():
        placed = state.view.where.get(name)
        if task.state is R:
            if task.machine is None or placed is None or state.view.names[placed] != task.machine:
                fail(f"running task {name} is not on its machine {task.machine} in the view")
            if state.machines[task.machine].state != "up":
                fail(f"running task {name} is on {task.machine}, which is {state.machines[task.machine].state}")
        elif placed is not None or task.machine is not None:
            fail(f"{task.state.value} task {name} occupies a machine")
        if (task.state is P) != (name in state.pending):
            fail(f"task {name} is {task.state.value} but {'not ' if name not in state.pending else ''}in the pending set")
        if task.history and task.history[-1].new != task.state.value:
            fail(f"task {name} is {task.state.value} but its last transition says {task.history[-1].new}")
    for name, copy in state.copies.items():  # a speculative copy: its running task's, elsewhere
        placed = state.view.where.get(copy.id)
        task = state.tasks[name]
        if task.state is not R or copy.machine == task.machine:
            fail(f"copy {copy.id} runs on {copy.machine} for a task {task.state.value} on {task.machine}")
        if placed is None or state.view.names[placed] != copy.machine:
            fail(f"copy {copy.id} is not on its machine {copy.machine} in the view")
    for name, drain in state.draining.items():  # an old copy of a start-first move: its room held
        placed, task = state.view.where.get(drain.id), state.tasks[name]
        if task.state is not R or task.machine == drain.machine or task.generation != drain.generation + 1:
            fail(f"old copy {drain.id} drains on {drain.machine} for a task {task.state.value} on {task.machine}")
        if placed is None or state.view.names[placed] != drain.machine:
            fail(f"old copy {drain.id} does not hold its room on {drain.machine} in the view")
    if len(state.view.where) != (sum(1 for t in state.tasks.values() if t.state is R) + len(state.copies)
                                 + len(state.draining)):
        fail("the view holds tasks that are not running")
    for jid, job in state.jobs.items():
        tasks = state.tasks_of(jid)
        states = {t.state for t in tasks}
        want = JobState.RUNNING if R in states else JobState.PENDING if P in states else None
        if (job.state is not want) if want is not None else not job.state.ended:
            fail(f"job {jid} is {job.state.value} but its tasks say {want.value if want else 'ended'}")
        alive = [t for t in tasks if t.state is not D]
        if not job.state.ended and any(t.index >= job.spec.tasks for t in alive):
            fail(f"job {jid} has a live task beyond its {job.spec.tasks} tasks")
    live_ordered = {j.id for j in state.jobs.values() if j.spec.after is not None and not j.state.ended}
    if live_ordered != state.waiting:
        fail(f"the set of ordered jobs is out of date: {sorted(live_ordered ^ state.waiting)}")
    _check_allocs(state, fail)
    # Quota: every live regular task of a live job is charged at its job's limits; opportunistic ones
    # never are, and are listed oldest first.
    usage: dict[tuple[str, Band], np.ndarray] = {}
    opportunistic = []
    for task in state.tasks.values():
        if task.state is D:
            continue
        job = state.jobs[task.job]
        if task.opportunistic:
            opportunistic.append((task.opportunistic, task.index, task.name))
            continue
        key = (job.user, job.band)
        usage[key] = usage.get(key, 0) + charge(job.spec, 1)
    if [name for _, _, name in sorted(opportunistic)] != list(state.opportunistic):
        fail("the list of opportunistic tasks is out of date (or not oldest first)")
    for key in set(usage) | set(state.usage):
        if not np.array_equal(usage.get(key, 0) + np.zeros(len(DIMS), dtype=np.int64), state.usage_of(*key)):
            fail(f"quota usage of {key[0]} in band {key[1].value} is out of date")


def _check_allocs(state: Any, fail) -> None:
    """Alloc-level accounting: every task placed in an alloc is running on the alloc's machine and
    holds nothing of the machine itself (the alloc holds it: nothing is counted twice); the tasks in
    an alloc fit it; the alloc bookkeeping is what the tasks say."""
    members: dict[str, dict[str, None]] = {}
    for name, task in state.tasks.items():
        job = state.jobs[task.job]
        if task.alloc is not None:
            if task.state is not R:
                fail(f"{task.state.value} task {name} is in alloc {task.alloc}")
            members.setdefault(task.alloc, {})[name] = None
            alloc = state.tasks.get(task.alloc)
            if alloc is None or alloc.state is not R or not state.jobs[alloc.job].is_allocset:
                fail(f"task {name} runs in alloc {task.alloc}, which is not a placed alloc")
            if alloc.machine != task.machine:
                fail(f"task {name} is on {task.machine}, its alloc {task.alloc} on {alloc.machine}")
            if task.request is not None and task.request.vector.any():
                fail(f"task {name} in alloc {task.alloc} holds resources of its machine too")
        elif task.state is R and job.spec.alloc:
            fail(f"running task {name} of job {job.id} is in no alloc of its set {job.spec.alloc}")
    if {a: set(m) for a, m in members.items()} != {a: set(m) for a, m in state.alloc_members.items()}:
        fail("the allocs' member lists are out of date")
    for alloc, tasks in state.alloc_members.items():
        allocset = state.jobs[state.tasks[alloc].job]
        capacity = allocset.spec.resources.to_resources().vector()
        used = state.alloc_used(alloc)
        if (used > capacity).any():
            fail(f"alloc {alloc} is over-committed: its tasks use {used.tolist()}, it holds {capacity.tolist()}")
        for name, need in tasks.items():
            task = state.tasks[name]
            if not np.array_equal(need, state.jobs[task.job].need_of(task.version)):
                fail(f"task {name} takes {need.tolist()} of alloc {alloc}, its spec says otherwise")
