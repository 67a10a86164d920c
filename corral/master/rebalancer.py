"""The rebalancer in the master: a scheduler whose plans are moves, applied as the core's events.

Sans-IO and clocked like the rest of the core: the live master calls :meth:`Rebalancer.run` from
its loop, the simulator from its event loop, with the same core (``run`` does nothing until
``interval_s`` of the core's clock has passed since the last pass). A pass:

1. under the lock: a copy of the cell view, each job's budget (``movable`` and
   ``disruption_budget`` of its spec, its live and pending task counts), the pending work (a gang
   waiting: its whole size; another job's pending tasks: one copy), the fragmentation measure
   (FGD's over the GPU shapes of the cell's tasks, plus stranded cpu/memory over their shapes);
2. without it: ``corral.sched.rebalance.plan_moves`` on the copy;
3. under the lock, in one step, each move that still holds (its task still running on the
   source, the target still with room for it while the old copy runs): ``TaskEnded`` (via
   ``evict``, its note the move's reason: "moved from m3 to m7 to free 16 GPUs for gang
   train.bob") and ``TaskScheduled`` on the target (the task's next generation), then the
   effects. A ``stop-first`` move sends ``KillTask`` on the source, then ``StartTask`` on the
   target. A ``start-first`` move sends only ``StartTask``: the old copy keeps running on the
   source, its room held in the cell view and the source's assignments listing it, until the
   target's agent reports the new generation running, ``drain_timeout_s`` passes (at ``Tick``),
   or the task leaves that placement; only then is it killed (corral.master.drains).
"""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from typing import Any, Callable, ContextManager

import numpy as np

from corral.master import drains
from corral.master.events import TaskEnded, TaskScheduled
from corral.master.records import launch_body
from corral.model.job import TaskState
from corral.sched.rebalance.budget import BudgetLedger, DisruptionBudget, JobBudget
from corral.sched.rebalance.fragmentation import Combined, GpuFragmentation, StrandedResources
from corral.sched.rebalance.moves import START_FIRST, RebalancePlan
from corral.sched.rebalance.planner import RebalanceConfig, Unit, plan_moves
from corral.sched.scorers.fgd import TypicalPods

R, P = TaskState.RUNNING, TaskState.PENDING


def job_budgets(state: Any) -> dict[str, JobBudget]:
    out = {}
    for jid, job in state.jobs.items():
        if job.is_allocset or job.spec.alloc:
            continue  # allocs and the tasks inside them stay where they are
        tasks = [t for t in state.tasks_of(jid) if t.state in (R, P)]
        if not tasks:
            continue
        spec = job.spec.disruption_budget
        budget = DisruptionBudget() if spec is None else DisruptionBudget(spec.max_moving, spec.max_unavailable_pct)
        out[jid] = JobBudget(job.spec.may_move, budget, len(tasks), sum(1 for t in tasks if t.state is P))
    return out


def pending_units(state: Any) -> list[Unit]:
    """Pending work, oldest job first: a gang's size in copies, else one copy per job."""
    units: list[tuple[int, Unit]] = []
    seen: set[str] = set()
    for name in state.pending:
        task = state.tasks[name]
        job = state.jobs[task.job]
        if task.job in seen or job.is_allocset or job.spec.after:
            continue
        seen.add(task.job)
        size = job.spec.gang_size
        running = sum(1 for t in state.tasks_of(task.job) if t.state is R)
        if size and running < size:
            units.append((job.submitted_seq, (job.request, size - running, f"gang {task.job}")))
        else:
            units.append((job.submitted_seq, (job.request, 1, f"job {task.job}")))
    return [unit for _, unit in sorted(units, key=lambda u: u[0])]


def cell_measure(state: Any):
    """FGD's measure over the GPU shapes of the cell's live tasks, plus their stranded cpu/memory."""
    requests = [state.jobs[t.job].request for t in state.tasks.values() if t.state in (R, P)]
    gpu = Counter((int(r.vector[0]), r.gpu_milli, r.gpu, r.resources.gpu_models) for r in requests if r.gpu)
    parts = [(StrandedResources.from_requests(requests), 1.0)]
    if gpu:
        keys = sorted(gpu)
        count = sum(gpu.values())
        typical = TypicalPods(np.array([k[0] for k in keys]), np.array([k[1] for k in keys]),
                              np.array([k[2] for k in keys]), tuple(k[3] for k in keys),
                              np.array([gpu[k] / count for k in keys]))
        parts.append((GpuFragmentation(typical, scale=1 / 1000), 1.0))  # in GPUs, like the machine fractions
    return Combined(tuple(parts))


class Rebalancer:
    def __init__(self, core: Any, config: RebalanceConfig):
        self.core, self.config = core, config
        self.last: float | None = None
        self.moves = 0
        self.passes = 0

    def due(self) -> bool:
        now = self.core.clock.now()
        return self.config.enabled and (self.last is None or now - self.last >= self.config.interval_s)

    def run(self, lock: ContextManager | None = None, persist: Callable[[Any], Any] = lambda out: None,
            force: bool = False):
        """One pass if due (or ``force``); the outcome handed to ``persist`` and returned, or None."""
        if not (force or self.due()):
            return None
        lock = lock or nullcontext()
        core = self.core
        with lock:
            self.last = core.clock.now()
            view = core.state.view.copy()
            ledger = BudgetLedger(job_budgets(core.state), pinned=drains.pinned(core.state))
            for drain in core.state.draining.values():  # a move still in progress counts as moving
                job = core.state.tasks[drain.task].job
                ledger.moving[job] = ledger.moving.get(job, 0) + 1
            units = pending_units(core.state)
            measure = cell_measure(core.state)
        try:
            plan = plan_moves(view, core.scheduler.policy, ledger, units, measure, self.config)
        finally:
            view.release()
        with lock:
            out = core._run(core.ids(), lambda step: self._apply(step, plan))
            persist(out)
        self.passes += 1
        self.moves += out.reply["moved"]
        return out

    def _apply(self, step: Any, plan: RebalancePlan) -> None:
        state = step.state
        moved, stale = [], []
        for move in plan.moves:
            task = state.tasks.get(move.task)
            target = state.view.index.get(move.target)
            if (task is None or task.state is not R or task.machine != move.source or target is None
                    or task.name in state.draining):  # its last move is still in progress
                stale.append(move.task)
                continue
            req, view = state.jobs[task.job].request, state.view
            fits = (view.free[target] >= req.vector).all() and all(
                view.gpu_idle[target, g] >= req.gpu_milli for g in move.gpus)
            if not fits:
                stale.append(move.task)
                continue
            old = drains.Drain(task.name, move.source, task.generation, step.clock.now() + self.config.drain_timeout_s,
                               move.reason, task.gpus, task.ports, task.reclaimed, task.request)
            step.emit(TaskEnded, task=task.name, via="evict", note=move.reason, machine=move.source)
            step.emit(TaskScheduled, task=task.name, machine=move.target, gpus=tuple(move.gpus),
                      generation=task.generation + 1)
            task.reason = move.reason
            start = lambda: step.start(task.name, move.target, launch_body(state.jobs[task.job], task))  # noqa: E731
            if move.order == START_FIRST:  # the old copy drains until the new one runs (drains.py)
                drains.hold(state, old)
                start()
            else:
                step.kill(task.name, move.source, move.reason)
                start()
            moved.append({"task": move.task, "from": move.source, "to": move.target, "order": move.order,
                          "goal": move.goal, "reason": move.reason})
        step.reply = {"moved": len(moved), "moves": moved, "stale": stale, "freed": list(plan.freed)}
