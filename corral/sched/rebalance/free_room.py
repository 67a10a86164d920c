"""Goal (a): free room for pending work that fits nowhere (a gang above all: whole GPU machines).

For a unit of pending work (a request and how many copies must fit at once: a gang's size, or 1)
that the cell cannot hold now, clear machines one at a time: on each, move its movable tasks
(those holding what the unit lacks first, smallest first) to other machines the policy finds
feasible, until the machine holds more copies. Machines being cleared are never targets. If the
cell then holds enough copies the moves stand, else every one of them is undone: no move is
made for room that would not be enough.
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import GPU
from corral.sched.cellview import CellView, PlacementError
from corral.sched.context import EvalContext
from corral.sched.gang import copies_that_fit
from corral.sched.rebalance.moves import FREE_ROOM, Journal, best_target
from corral.sched.request import TaskRequest


def copies_now(view: CellView, policy, req: TaskRequest, idx: np.ndarray | None = None) -> np.ndarray:
    """Copies of ``req`` each machine could take now: by resources, where its checkers allow."""
    idx = np.arange(len(view)) if idx is None else idx
    mask, _ = policy.evaluate(EvalContext(view, req, idx))
    return np.where(mask, copies_that_fit(req, view.free[idx], view.gpu_idle[idx]), 0)


def _ever(view: CellView, policy, req: TaskRequest) -> np.ndarray:
    idx = np.arange(len(view))
    mask, _ = policy.evaluate(EvalContext(view, req, idx, free=view.capacity, gpu_idle=view.gpu_idle_when_empty))
    return mask


def shortfall(view: CellView, req: TaskRequest) -> np.ndarray:
    """Per machine, how much one copy lacks there: each resource short as a share of the machine,
    and for GPUs the GPUs short (with the request's share idle) as a share of its GPUs."""
    vec = req.vector.copy()
    vec[GPU] = 0
    short = (np.maximum(vec - view.free, 0) * view.inverse_capacity).sum(axis=1)
    if req.gpu:
        slots = (view.gpu_idle // max(req.gpu_milli, 1)).sum(axis=1)
        short = short + np.maximum(req.gpu - slots, 0) / np.maximum(view.gpu_count, 1)
    return short


def _what(req: TaskRequest, need: int) -> str:
    if req.gpu:
        return f"{need * req.gpu} GPU{'s' if need * req.gpu != 1 else ''}" if req.gpu_milli >= 1000 else \
            f"{req.gpu_milli}m of a GPU"
    return req.resources.describe()


def free_room(journal: Journal, policy, req: TaskRequest, need: int, label: str,
              max_moves: int, max_machines: int = 32) -> bool:
    """Make room for ``need`` copies of ``req`` with at most ``max_moves`` moves; True if made
    (the moves are in ``journal``), False with the journal as it was."""
    view, ledger = journal.view, journal.ledger
    have = int(copies_now(view, policy, req).sum())
    if have >= need:
        return False  # it fits already: the scheduler's work, not ours
    ever = _ever(view, policy, req)
    # Machines that could hold it, those it lacks least on first (then fewest movable tasks).
    counts = np.array([sum(1 for t in view.tasks[m].values() if ledger.movable_task(t)) if ever[m] else -1
                       for m in range(len(view))])
    short = shortfall(view, req)
    order = [int(m) for m in np.lexsort((view.rank, counts, short)) if counts[m] > 0]
    mark = journal.mark()
    protected = copies_now(view, policy, req) > 0  # room it already has is kept for it
    why = f"to free {_what(req, need)} for {label}"
    order = order[:max_machines]
    for i, m in enumerate(order):
        if have >= need or len(journal.done) - mark >= max_moves:
            break
        before = int(copies_now(view, policy, req, np.array([m]))[0])
        # this machine and the next ones the unit still needs are never targets: no task is moved
        # twice over (or onto a machine about to be cleared)
        protected[order[i:i + max(need - have, 1)]] = True
        tasks = sorted((t for t in view.tasks[m].values() if ledger.movable_task(t)),
                       key=lambda t: (-(req.gpu > 0 and t.request.gpu > 0), int(t.request.vector[GPU]),
                                      int(t.request.vector.sum()), t.id))
        after = before
        for task in tasks:
            if after > before and have - before + after >= need:
                break
            if len(journal.done) - mark >= max_moves or not ledger.can_move(task.job):
                continue
            target = best_target(view, policy, task, ~protected)
            if target is None:
                continue
            try:
                journal.move(task, target[0], target[1], FREE_ROOM, why)
            except PlacementError:
                continue
            after = int(copies_now(view, policy, req, np.array([m]))[0])
        have = int(copies_now(view, policy, req).sum())  # moved tasks may have taken room elsewhere
    if have >= need:
        return True
    journal.undo(mark)
    return False
