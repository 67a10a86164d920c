"""Moves: what a rebalancing plan is made of, and how a plan is tried out on a cell view.

A :class:`Move` takes one running task from ``source`` to ``target`` (with the GPUs it gets
there). ``order`` is ``start-first`` when the target holds the new copy while the old one still
runs (the master starts the new copy before stopping the old), ``stop-first`` otherwise. The
:class:`Journal` carries moves out on the view as they are planned and can undo them, so a goal
that falls short (a gang still without room) leaves no move behind. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from corral.sched.cellview import CellView, PlacementError
from corral.sched.context import EvalContext
from corral.sched.rebalance.budget import BudgetLedger
from corral.sched.request import PlacedTask

START_FIRST, STOP_FIRST = "start-first", "stop-first"
FREE_ROOM, DEFRAGMENT = "free-room", "defragment"


@dataclass(frozen=True)
class Move:
    task: str
    job: str
    source: str
    target: str
    gpus: tuple[int, ...]
    order: str  # start-first | stop-first
    goal: str  # free-room | defragment
    reason: str  # one sentence: "moved from m3 to m7 to free 8 GPUs for gang train.bob"


@dataclass
class RebalancePlan:
    moves: list[Move] = field(default_factory=list)
    freed: list[str] = field(default_factory=list)  # the pending units given room
    stats: dict[str, float] = field(default_factory=dict)


class Journal:
    """Moves applied to ``view`` in order, charged to ``ledger``; :meth:`undo` takes them back."""

    def __init__(self, view: CellView, ledger: BudgetLedger):
        self.view, self.ledger = view, ledger
        self.done: list[tuple[Move, PlacedTask]] = []

    def mark(self) -> int:
        return len(self.done)

    def move(self, task: PlacedTask, target: int, gpus: tuple[int, ...], goal: str, why: str) -> Move:
        view = self.view
        source = view.where[task.id]
        order = START_FIRST if fits_beside(view, task, target, gpus) else STOP_FIRST
        self.ledger.charge(task.job, order == STOP_FIRST)
        view.remove(task.id)
        try:
            view.place(replace(task, gpus=gpus, plan=None, reserved=None, reclaimed=False), target)
        except PlacementError:
            view.place(task, source)
            self.ledger.refund(task.job, order == STOP_FIRST)
            raise
        move = Move(task.id, task.job, view.names[source], view.names[target], gpus, order, goal,
                    f"moved from {view.names[source]} to {view.names[target]} {why}")
        self.done.append((move, task))
        return move

    def undo(self, mark: int = 0) -> None:
        view = self.view
        while len(self.done) > mark:
            move, task = self.done.pop()
            view.remove(task.id)
            view.place(task, view.index[move.source])
            self.ledger.refund(move.job, move.order == STOP_FIRST)

    @property
    def moves(self) -> list[Move]:
        return [m for m, _ in self.done]


def fits_beside(view: CellView, task: PlacedTask, target: int, gpus: tuple[int, ...]) -> bool:
    """Would the new copy fit on ``target`` while the old one still holds its source?"""
    vec = task.request.vector
    if (view.free[target] < vec).any():
        return False
    return all(view.gpu_idle[target, g] >= task.request.gpu_milli for g in gpus)


def best_target(view: CellView, policy, task: PlacedTask, allowed: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
    """The machine the policy scores best for ``task`` among ``allowed`` (bool over machines,
    its own machine excluded by the caller), judged as the task stands now; with its GPUs."""
    idx = np.flatnonzero(allowed)
    if not len(idx):
        return None
    mask, score = policy.evaluate(EvalContext(view, task.request, idx))
    if not mask.any():
        return None
    ok = idx[mask]
    best = ok[np.lexsort((view.rank[ok], -score[mask]))[0]]
    return int(best), tuple(policy.select_gpus(view, int(best), task.request))
