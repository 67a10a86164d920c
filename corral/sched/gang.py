"""Gangs: tasks placed all together in one plan, or none of them; and how a gang avoids starving.

A pending task with ``gang = n > 0`` belongs to a job that needs ``n`` of its pending tasks placed
together (``gang: true``: all of them; ``min_tasks: N``: N less those already running). The
scheduler places a gang's tasks as one unit when the first of them comes up in queue order: it
places them tentatively (preempting where a task alone would), and if fewer than ``n`` could be
placed it *rolls back*: the gang's placements are removed from the view, its victims put back,
both taken out of the plan, and every task of the gang is explained with one sentence about the
gang (:func:`gang_sentence`). So no plan holds part of a gang, preemption is used for a gang only
when it makes the whole gang fit, and the view's per-user usage (DRF) is as before the attempt.

No starvation (:class:`GangReservations`): a backfill rule with a reservation, as Slurm's
backfill scheduler reserves room for the job at the head of its queue. Once a gang has failed to
place in ``reserve_after`` passes (``SchedulerConfig.gang_reserve_after``; None turns the rule
off), every pass first *reserves* for it the machines where it would fit soonest: those that
hold most of its tasks now, then the least used, until its tasks fit on them when they are empty.
On a reserved machine no task of a lower or equal priority (of another job) is placed unless the
machine still has the gang's reserved room after it (backfill: it does not delay the gang); a
higher priority may place there. As the running work on those machines finishes, the room is not
handed out again, so the gang starts once the reserved machines have drained, however steady
the stream of small jobs. Older gangs reserve first; a machine is reserved for one gang at a
time. Tasks kept off a reserved machine say so in their pending reason. Preemption by a task
that the reservation restricts is not tried on a reserved machine.

Pure: reads and changes only the view and the plan it is given.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from corral.model.priority import preemptible_below
from corral.model.resources import DIMS, GPU, GPU_MILLI_WHOLE
from corral.sched.cellview import CellView
from corral.sched.context import EvalContext
from corral.sched.explain import Explanation, explain
from corral.sched.plan import Plan
from corral.sched.preempt import why_no_preemption
from corral.sched.queue import _runs
from corral.sched.request import PendingTask, TaskRequest

_FORGET_AFTER = 64  # passes: a gang not seen pending for this long is forgotten (killed, or placed)


def copies_that_fit(req: TaskRequest, free: np.ndarray, gpu_idle: np.ndarray) -> np.ndarray:
    """How many copies of ``req`` fit in each row of ``free`` (with its GPUs ``gpu_idle``), by
    resources alone (no constraints)."""
    vec = req.vector
    copies = np.full(len(free), np.iinfo(np.int64).max // 2, dtype=np.int64)
    for d in range(len(DIMS)):
        if d != GPU and vec[d] > 0:
            copies = np.minimum(copies, free[:, d] // vec[d])
    if req.gpu:
        slots = (gpu_idle // max(req.gpu_milli, 1)).sum(axis=1) // req.gpu
        copies = np.minimum(copies, slots)
    return np.maximum(copies, 0)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def gang_sentence(view: CellView, policy, req: TaskRequest, need: int, pending: int) -> str:
    """The gang's part of its pending reason, e.g. ``gang of 8: 5 machines have 1 free GPU, 8 needed``."""
    idx = np.arange(len(view))
    feasible, _ = policy.evaluate(EvalContext(view, req, idx))
    copies = np.where(feasible, copies_that_fit(req, view.free, view.gpu_idle), 0)
    head = f"gang of {need}"
    if pending > need:
        head += f" (at least {need} of {pending} pending tasks together)"
    whole_gpus = req.gpu and req.gpu_milli == GPU_MILLI_WHOLE
    if whole_gpus and req.gpu > 1:
        head += f" ({req.gpu} GPUs each)"
    if whole_gpus:
        free_gpus = (view.gpu_idle >= GPU_MILLI_WHOLE).sum(axis=1)
        groups = Counter(free_gpus[copies > 0].tolist())
        unit = "free GPU"
    else:
        groups = Counter(copies[copies > 0].tolist())
        unit = "task"
    if not groups:
        return f"{head}: no machine has room for one of its tasks, {need} needed"
    ordered = sorted(groups.items(), key=lambda kv: -kv[0])
    parts = [f"{_plural(n, 'machine')} {'has' if n == 1 else 'have'} "
             + (_plural(k, unit) if unit == "free GPU" else f"room for {_plural(k, unit)}")
             for k, n in ordered[:3]]
    if len(ordered) > 3:
        parts.append(f"{sum(n for _, n in ordered[3:])} more with less")
    return f"{head}: {', '.join(parts)}, {need} needed"

class GangReservations:
    """The no-starvation rule: reservations for gangs that waited ``reserve_after`` passes (module doc).

    Between passes it remembers how many passes each gang failed to place; each pass recomputes
    the reservations from the pass's pending gangs and the view as it is."""

    def __init__(self, reserve_after: int | None = 3):
        self.reserve_after = reserve_after
        self.waits: dict[str, list[int]] = {}  # gang job -> [passes it failed to place, the last pass it was seen]
        self.passes = 0
        self.current: int = -2  # the gang being placed: its own reservation does not bind it
        self.active = False
        self.jobs: list[str] = []  # the reserving gangs of this pass (owner codes index it)
        self.max_priority = -1
        self.evictions: list | None = None  # (victim, machine) while a gang is placed: put back if it falls short

    def evicted(self, victim, machine: int) -> None:
        """The scheduler evicted ``victim`` from ``machine`` (kept only while a gang is being placed)."""
        if self.evictions is not None:
            self.evictions.append((victim, machine))

    # ---- the pass ---------------------------------------------------------------------------------

    def begin(self, view: CellView, policy, pending: Sequence[PendingTask]) -> dict[str, list[PendingTask]]:
        """Start a pass over ``view`` with ``pending``; the pending tasks of each gang job ({}: none)."""
        gangs = group_gangs(pending) if any(task.gang for task in pending) else {}
        self._begin(view, policy, gangs)
        return gangs

    def _begin(self, view: CellView, policy, gangs: dict[str, list[PendingTask]]) -> None:
        self.passes += 1
        self.active, self.jobs, self.max_priority, self.current = False, [], -1, -2
        for job, tasks in gangs.items():
            self.waits.setdefault(job, [0, self.passes])[1] = self.passes
        for job in [j for j, (_, seen) in self.waits.items() if self.passes - seen > _FORGET_AFTER]:
            del self.waits[job]
        if self.reserve_after is None or not gangs:
            return
        due = sorted((job for job in gangs if self.waits[job][0] >= self.reserve_after),
                     key=lambda j: (-self.waits[j][0], j))
        if not due:
            return
        count = len(view)
        self.reserved = np.zeros((count, len(DIMS)), dtype=np.int64)
        self.reserved_gpus = np.zeros(count, dtype=np.int64)
        self.priority = np.full(count, -1, dtype=np.int64)
        self.owner = np.full(count, -1, dtype=np.int64)
        for job in due:
            tasks = gangs[job]
            self._reserve(view, policy, job, tasks[0].request, tasks[0].gang)
        self.active = bool(self.jobs)

    def _reserve(self, view: CellView, policy, job: str, req: TaskRequest, need: int) -> None:
        candidates = np.flatnonzero(policy.could_ever_fit(view, req) & (self.owner < 0))
        if not len(candidates):
            return
        empty = copies_that_fit(req, view.capacity[candidates], view.gpu_idle_when_empty[candidates])
        if int(np.minimum(empty, need).sum()) < need:
            return  # it would not fit even on empty machines: holding them back helps nobody
        now = np.minimum(copies_that_fit(req, view.free[candidates], view.gpu_idle[candidates]), empty)
        used = ((view.capacity[candidates] - view.free[candidates]) * view.inverse_capacity[candidates]).max(axis=1)
        order = np.lexsort((view.rank[candidates], used, -now))
        code = len(self.jobs)
        self.jobs.append(job)
        self.max_priority = max(self.max_priority, req.priority)
        left = need
        for at in order:
            if left <= 0:
                break
            k = int(min(empty[at], left))
            if k <= 0:
                continue
            machine = candidates[at]
            self.reserved[machine] = req.vector * k
            self.reserved_gpus[machine] = req.gpu * k if req.gpu_milli == GPU_MILLI_WHOLE else 0
            self.priority[machine] = req.priority
            self.owner[machine] = code
            left -= k

    def placing(self, job: str | None) -> None:
        """The gang ``job`` is being placed now (None: no gang): its own reservation does not bind it."""
        self.current = self.jobs.index(job) if job is not None and self.active and job in self.jobs else -2

    def failed(self, job: str) -> None:
        self.waits.setdefault(job, [0, self.passes])[0] += 1

    def placed(self, job: str) -> None:
        self.waits.pop(job, None)
        if self.active and job in self.jobs:
            mine = self.owner == self.jobs.index(job)
            self.priority[mine], self.owner[mine] = -1, -1
            self.reserved[mine], self.reserved_gpus[mine] = 0, 0

    # ---- what the reservations allow --------------------------------------------------------------

    def restricts(self, req: TaskRequest) -> bool:
        """Could a reservation keep a task of ``req`` off a machine in this pass?"""
        return self.active and req.priority <= self.max_priority

    def held(self, req: TaskRequest, idx: np.ndarray) -> np.ndarray:
        """Which of machines ``idx`` are reserved against ``req`` (another gang's, at ``req``'s
        priority or above)."""
        return (self.priority[idx] >= req.priority) & (self.owner[idx] != self.current) & (self.owner[idx] >= 0)

    def holds(self, req: TaskRequest, machine: int) -> bool:
        """Is ``machine`` reserved against ``req`` (no preemption for it there)?"""
        return self.restricts(req) and bool(self.held(req, np.array([machine]))[0])

    def keep_off_held(self, view: CellView, req: TaskRequest, idx: np.ndarray, at: np.ndarray, scores: np.ndarray):
        """``(at, scores)`` (positions in ``idx`` of feasible machines, their scores) less the machines
        a task of ``req`` may not take (``allowed``)."""
        if not len(at) or not self.restricts(req):
            return at, scores
        allowed = self.allowed(view, req, idx[at])
        return at[allowed], scores[allowed]

    def allowed(self, view: CellView, req: TaskRequest, idx: np.ndarray) -> np.ndarray:
        """Which of machines ``idx`` a task of ``req`` may go to: unreserved against it, or with the
        reserved room left after it (backfill)."""
        held = self.held(req, idx)
        if not held.any():
            return np.ones(len(idx), dtype=bool)
        keeps = np.logical_and.reduce(view.free[idx] - req.vector >= self.reserved[idx], axis=1)
        if req.gpu:
            whole = (view.gpu_idle[idx] >= GPU_MILLI_WHOLE).sum(axis=1)
            keeps &= whole - req.gpu >= self.reserved_gpus[idx]
        return ~held | keeps

    def note(self, view: CellView, req: TaskRequest) -> str:
        """What a restricted task's pending reason adds: which machines are held, for which gang."""
        if not self.restricts(req):
            return ""
        held = self.held(req, np.arange(len(view)))
        if not held.any():
            return ""
        gangs = sorted({self.jobs[c] for c in self.owner[held].tolist()})
        waited = max(self.waits.get(j, [0])[0] for j in gangs)
        return (f"{_plural(int(held.sum()), 'machine')} {'is' if held.sum() == 1 else 'are'} held for "
                f"gang {', '.join(gangs)} (waiting {_plural(waited, 'round')})")


class GangPlacement:
    """The scheduler's gang steps (a mixin of :class:`corral.sched.scheduler.Scheduler`, whose
    ``_schedule_run``, ``_state``, ``_gangs``, ``policy`` and ``config`` they use)."""

    def _schedule_with_gangs(self, view, run, plan, this_pass, gangs) -> None:
        """A run that may hold tasks of gangs: each gang is placed whole where its first task comes
        (its entry in ``gangs`` is emptied then)."""
        alone: list[PendingTask] = []
        for task in run:
            if not task.gang:
                alone.append(task)
                continue
            if alone:
                self._schedule_run(view, alone, plan, this_pass)
                alone = []
            tasks = gangs[task.job]
            if tasks:
                gangs[task.job] = []
                self._schedule_gang(view, tasks, plan, this_pass)
        if alone:
            self._schedule_run(view, alone, plan, this_pass)

    def _schedule_gang(self, view: CellView, tasks: list[PendingTask], plan: Plan, this_pass: object) -> None:
        """Place at least ``tasks[0].gang`` of a gang's ``tasks`` together, or none: a gang that falls
        short is rolled back (its placements and evictions undone on the view and in the plan)."""
        job, need = tasks[0].job, tasks[0].gang
        placements, preemptions = len(plan.placements), len(plan.preemptions)
        self._gangs.evictions = evicted = []
        self._gangs.placing(job)
        try:
            for run in _runs(tasks):
                self._schedule_run(view, run, plan, this_pass)
        finally:
            self._gangs.placing(None)
            self._gangs.evictions = None
        if len(plan.placements) - placements >= need:
            self._gangs.placed(job)
            return
        for p in reversed(plan.placements[placements:]):
            view.remove(p.task_id)
        for victim, machine in reversed(evicted):
            view.place(victim, machine)
        del plan.placements[placements:]
        del plan.preemptions[preemptions:]
        for task in tasks:  # the attempt's view is gone: its classes start this pass afresh
            self._state(view, task).new_pass()
        self._gangs.failed(job)
        explanation = self._gang_explanation(view, tasks[0].request, need, len(tasks))
        for task in tasks:
            plan.unplaced[task.id] = explanation

    def _gang_explanation(self, view: CellView, req: TaskRequest, need: int, pending: int) -> Explanation:
        explanation = explain(self.policy, EvalContext(view, req, np.arange(len(view))))
        explanation.gang = gang_sentence(view, self.policy, req, need, pending)
        if self.config.preemption and preemptible_below(req.priority):
            explanation.preemption = "Preemption cannot make room for the whole gang (no task was evicted for it)"
        else:
            explanation.preemption = why_no_preemption(req, self.config.preemption)
        return explanation


def group_gangs(pending: Sequence[PendingTask]) -> dict[str, list[PendingTask]]:
    """The pending tasks of each gang job (tasks with ``gang > 0``), in index order."""
    gangs: dict[str, list[PendingTask]] = {}
    for task in pending:
        if task.gang:
            gangs.setdefault(task.job, []).append(task)
    for tasks in gangs.values():
        tasks.sort(key=lambda t: t.index)
    return gangs
