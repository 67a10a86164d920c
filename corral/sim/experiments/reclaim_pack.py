"""A packing with reclamation as time passes (Borg §5.5), through the master's own reservation code.

After the master's first round has placed what fits against limits, simulated
time passes on the probe's manual clock in cycles. In each, every machine's
agent reports what its running tasks use (``UsageReport``, the command a live
agent's poll becomes; the trace's usage, flat: a checkpoint is one moment), the
clock moves on by the estimator's decay time and they report again, so the
master's reservation book (corral/master/reservation_book.py, reservations.py)
decays each reservation from the limit to the usage peak plus the margin; then
a round lets the scheduler's ``ReclaimableFit`` place pending non-production
tasks in the room reservations leave (each marked ``reclaimed``). Tasks placed
in one cycle reserve their limits until the next one's reports, so the cycles go
on until a round places nothing more (or ``MAX_CYCLES``).

No estimate is made here: the reservations, the room and the placements are the
master's and the scheduler's, as in the live cell.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

from corral.master.commands import UsageReport
from corral.master.core import MasterCore
from corral.master.reservations import ReservationPolicy, Reservations
from corral.model.job import TaskState
from corral.sched.checkers.reclaim import against_limits
from corral.sim.agents import trace_usage
from corral.sim.trace import TraceJob

MAX_CYCLES = 8  # report, decay, report, round; the room reclaimed grows less each cycle


def use_policy(core: MasterCore, policy: ReservationPolicy) -> None:
    """The core's reservation book estimates with ``policy`` (before any usage report)."""
    core.reservations.estimator = Reservations(policy)


def report_usage(core: MasterCore, jobs: dict[str, TraceJob]) -> int:
    """Every machine's agent reports its running tasks' usage now; returns the events emitted (the
    master's evictions, if reservations rose)."""
    on: dict[str, dict[str, tuple[int, int, int]]] = {}
    for name, task in core.state.tasks.items():
        if task.state is TaskState.RUNNING and task.alloc is None and task.job in jobs:
            cpu, memory = trace_usage(jobs[task.job], core.clock.now())
            on.setdefault(task.machine, {})[name] = (task.generation, cpu, memory)
    return sum(len(core.handle(UsageReport(machine, usage)).events) for machine, usage in sorted(on.items()))


def settle(core: MasterCore, jobs: dict[str, TraceJob], policy: ReservationPolicy) -> tuple[int, int]:
    """Let reservations decay and rounds place work in reclaimed room; (events, cycles run)."""
    events = cycles = 0
    while cycles < MAX_CYCLES and core.state.pending:
        cycles += 1
        events += report_usage(core, jobs)
        core.clock.advance(policy.decay_s)
        events += report_usage(core, jobs)
        out = core.schedule()
        events += len(out.events)
        if not out.reply["placed"]:
            break
    return events, cycles


def floor_job(job: TraceJob, policy: ReservationPolicy) -> TraceJob:
    """``job`` at the least it can hold once packed with reclamation, for the search's lower bound only:
    production at its limit; the rest at its usage plus the margin (where its reservation decays to),
    at most its limit. A reclaimed placement needs its limit in the room at that moment and
    reservations only fall afterwards (usage is flat), so a machine's reservations stay within it."""
    if against_limits(job.priority):
        return job

    def least(limit: int, usage: int | None) -> int:
        return limit if usage is None else min(limit, math.ceil(round(usage * (1 + policy.margin), 6)))

    return replace(job, cpu=least(job.cpu, job.cpu_usage), memory=least(job.memory, job.memory_usage))


def reclaimed_tasks(core: MasterCore) -> Counter:
    """Job id -> its running tasks placed in reclaimed room."""
    return Counter(t.job for t in core.state.tasks.values() if t.state is TaskState.RUNNING and t.reclaimed)


__all__ = ["MAX_CYCLES", "floor_job", "reclaimed_tasks", "report_usage", "settle", "use_policy"]
