"""The rebalancer's planning pass: pending work that fits nowhere first, then fragmentation.

``plan_moves(view, policy, ledger, units, measure, config)`` works on ``view`` (give it a
snapshot: it is left as after the moves) and returns a :class:`RebalancePlan`. ``units`` are the
pending work the pass tries to make room for, oldest first: ``(request, copies needed at once,
label)``. At most ``config.max_moves`` moves in all; each job's disruption budget is charged in
``ledger`` and never exceeded; tasks of jobs that are not movable are never moved. Pure: no I/O,
no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from corral.sched.cellview import CellView
from corral.sched.rebalance.budget import BudgetLedger
from corral.sched.rebalance.defragment import defragment
from corral.sched.rebalance.fragmentation import Measure, cell_fragmentation
from corral.sched.rebalance.free_room import free_room
from corral.sched.rebalance.moves import Journal, RebalancePlan
from corral.sched.request import TaskRequest

Unit = tuple[TaskRequest, int, str]


@dataclass(frozen=True)
class RebalanceConfig:
    enabled: bool = False
    interval_s: float = 60.0  # between passes (the master's loop and the simulator read it)
    max_moves: int = 8  # per pass, both goals together
    free_room: bool = True  # goal (a)
    defragment: bool = True  # goal (b)
    min_gain: float = 1e-6  # smallest fragmentation drop a defragmenting move must give
    # how long a start-first move's old copy keeps running for its new copy to report running
    drain_timeout_s: float = 60.0


def plan_moves(view: CellView, policy, ledger: BudgetLedger, units: Sequence[Unit], measure: Measure | None,
               config: RebalanceConfig = RebalanceConfig()) -> RebalancePlan:
    journal = Journal(view, ledger)
    plan = RebalancePlan()
    if config.free_room:
        for req, need, label in units:
            left = config.max_moves - len(journal.done)
            if left <= 0:
                break
            if free_room(journal, policy, req, need, label, left):
                plan.freed.append(label)
    if config.defragment and measure is not None:
        before = cell_fragmentation(measure, view)
        defragment(journal, policy, measure, config.max_moves - len(journal.done), config.min_gain)
        plan.stats["fragmentation_before"] = before
        plan.stats["fragmentation_after"] = cell_fragmentation(measure, view)
    plan.moves = journal.moves
    return plan
