"""Disruption budgets (Kubernetes' PodDisruptionBudget): how many of a job's tasks one rebalancing
pass may move.

A job's budget is ``max_moving`` (at most N of its tasks moving at once) and/or
``max_unavailable_pct`` (at most M % of its tasks unavailable: its pending tasks and the tasks a
pass stops before their new copy starts). Every move counts against ``max_moving``; a
stop-then-start move, which leaves its task down for a while, also counts against the
percentage. Where both are set both hold. The ledger is the only place budgets are charged, so
"never exceeded" is one check here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DisruptionBudget:
    max_moving: int | None = 1  # the default: one task of a job moving at a time
    max_unavailable_pct: float | None = None

    def moving_allowed(self) -> int | None:
        return self.max_moving

    def down_allowed(self, tasks: int) -> int | None:
        """How many of ``tasks`` may be unavailable at once (floor, as PDB rounds)."""
        if self.max_unavailable_pct is None:
            return None
        return math.floor(tasks * self.max_unavailable_pct / 100.0 + 1e-9)


@dataclass(frozen=True)
class JobBudget:
    """What the rebalancer knows of one job: whether its tasks may move, its budget, its size."""

    movable: bool
    budget: DisruptionBudget = DisruptionBudget()
    tasks: int = 1  # the job's live tasks
    pending: int = 0  # of them, not running now (count as unavailable)


@dataclass
class BudgetLedger:
    jobs: dict[str, JobBudget]
    moving: dict[str, int] = field(default_factory=dict)
    stopped: dict[str, int] = field(default_factory=dict)
    # placed ids that never move, whatever their jobs' budgets (a move still in progress: both its copies)
    pinned: frozenset[str] = frozenset()

    def movable(self, job: str) -> bool:
        info = self.jobs.get(job)
        return info is not None and info.movable

    def movable_task(self, task) -> bool:
        """May this placed task (a PlacedTask) move at all?"""
        return task.id not in self.pinned and self.movable(task.job)

    def can_move(self, job: str, stop_first: bool = False) -> bool:
        info = self.jobs.get(job)
        if info is None or not info.movable:
            return False
        moving = info.budget.moving_allowed()
        if moving is not None and self.moving.get(job, 0) + 1 > moving:
            return False
        down = info.budget.down_allowed(info.tasks)
        if down is not None:
            later = info.pending + self.stopped.get(job, 0) + (1 if stop_first else 0)
            if later > down:
                return False
        return True

    def charge(self, job: str, stop_first: bool = False) -> None:
        if not self.can_move(job, stop_first):
            raise ValueError(f"job {job}: a move beyond its disruption budget")
        self.moving[job] = self.moving.get(job, 0) + 1
        if stop_first:
            self.stopped[job] = self.stopped.get(job, 0) + 1

    def refund(self, job: str, stop_first: bool = False) -> None:
        self.moving[job] -= 1
        if stop_first:
            self.stopped[job] -= 1
