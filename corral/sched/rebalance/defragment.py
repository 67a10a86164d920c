"""Goal (b): lower fragmentation by moving tasks, one greedy move at a time.

The most fragmented machines are looked at first; for each movable task on them (budget
permitting) the pass finds the machine the move would help most: the cell's fragmentation
after (source without the task, target with it) against before, by the measure
(``fragmentation.py``), over every machine the policy finds feasible. A move is made only if
the exact fragmentation, recomputed after the move, falls by more than ``min_gain``; otherwise
it is undone. So a pass never raises the cell's fragmentation.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from corral.sched.cellview import CellView, PlacementError
from corral.sched.context import EvalContext
from corral.sched.rebalance.fragmentation import Measure
from corral.sched.rebalance.moves import DEFRAGMENT, Journal
from corral.sched.request import PlacedTask
from corral.sched.scorers.fgd import take_gpus


def _frag_with(view: CellView, measure: Measure, idx: np.ndarray, task: PlacedTask, sign: int) -> np.ndarray:
    """Fragmentation of machines ``idx`` with ``task`` added (sign +1: its GPUs the smallest
    idle ones that fit) or taken away (-1, its own GPUs), without touching the view."""
    req = task.request
    saved_free, saved_idle = view.free[idx].copy(), view.gpu_idle[idx].copy()
    try:
        view.free[idx] -= sign * req.vector
        if req.gpu and sign > 0:
            view.gpu_idle[idx] = take_gpus(view.gpu_idle[idx], req.gpu_milli, req.gpu)
        elif req.gpu:
            for g in task.gpus:
                view.gpu_idle[idx, g] += req.gpu_milli
        return measure.of(view, idx)
    finally:
        view.free[idx], view.gpu_idle[idx] = saved_free, saved_idle


def defragment(journal: Journal, policy, measure: Measure, max_moves: int, min_gain: float = 1e-6,
               max_sources: int = 64) -> int:
    """Greedy moves that lower ``measure`` summed over the cell; returns how many were made."""
    view, ledger = journal.view, journal.ledger
    everyone = np.arange(len(view))
    frag = measure.of(view, everyone)
    made = 0
    for source in [int(m) for m in np.lexsort((view.rank, -frag)) if frag[m] > min_gain][:max_sources]:
        for task in sorted(view.tasks[source].values(), key=lambda t: t.id):
            if made >= max_moves:
                return made
            if (not ledger.movable_task(task) or not ledger.can_move(task.job)
                    or view.where.get(task.id) != source):
                continue
            at = np.array([source])
            here = measure.of(view, at)[0]
            gain_out = here - _frag_with(view, measure, at, task, -1)[0]
            others = everyone[everyone != source]
            mask, _ = policy.evaluate(EvalContext(view, task.request, others))
            cand = others[mask]
            if not len(cand):
                continue
            growth = _frag_with(view, measure, cand, task, +1) - measure.of(view, cand)
            best = int(np.argmin(growth - 1e-12 * view.rank[cand]))  # ties: lowest rank
            if gain_out - growth[best] <= min_gain:
                continue
            target = int(cand[best])
            before = measure.of(view, np.array([source, target])).sum()
            mark = journal.mark()
            try:
                gpus = tuple(policy.select_gpus(view, target, task.request))
                journal.move(task, target, gpus, DEFRAGMENT, "")
            except (PlacementError, ValueError):
                journal.undo(mark)
                continue
            after = measure.of(view, np.array([source, target])).sum()
            if before - after <= min_gain:  # the GPUs the policy chose did not give the gain
                journal.undo(mark)
                continue
            move, kept = journal.done[-1]
            journal.done[-1] = (_with_reason(move, before - after, view, measure), kept)
            made += 1
    return made


def _with_reason(move, gain: float, view: CellView, measure: Measure):
    unit = getattr(measure, "unit", "")
    return replace(move, reason=f"moved from {move.source} to {move.target} to lower fragmentation by {gain:.3g}"
                                + (f" {unit}" if unit else ""))
