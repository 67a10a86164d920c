"""Does a set of jobs fit on a set of machines? Asked of corral's own master core and scheduler.

``fits`` builds a fresh :class:`~corral.master.core.MasterCore` on a manual
clock with no store (the core applies each event to its state as it emits it;
nothing needs to be durable here, so the events are counted and dropped),
registers the machines, submits the jobs in arrival order and runs the
master's scheduling round. The master, not this module, decides the order
(priority bands high to low, users taking turns) and the placements.

One round is enough: the round itself retries placements that went stale,
and a second round could only add preemptions, each of which places one task
by evicting at least one, so the number of pending tasks could not fall.
Another round runs only if the master reports placements it gave up on as stale.

With ``reclaim`` (a reservation policy), simulated time then passes: agents report
usage, the master's reservations decay and its rounds place non-production work in
the room they leave (reclaim_pack.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from corral.master.errors import AdmissionError
from corral.master.clock import ManualClock
from corral.master.commands import RegisterMachine, Submit
from corral.master.core import MasterCore
from corral.master.records import job_id
from corral.master.reservations import ReservationPolicy
from corral.model.job import TaskState
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sim.experiments.reclaim_pack import reclaimed_tasks, settle, use_policy
from corral.sim.trace import TraceJob, TraceMachine, job_spec, machine_capacity, sort_jobs

MAX_ROUNDS = 4  # scheduling rounds while the master still reports stale placements


@dataclass
class PackResult:
    placed: int  # tasks running
    pending: int  # tasks left pending
    events: int  # events the master emitted (registrations, submissions, placements)
    # machine -> {job id: tasks of it there}; filled only when asked for (``placement=True``).
    placement: dict[str, Counter] = field(default_factory=dict)
    reclaimed: Counter = field(default_factory=Counter)  # job id -> tasks placed in reclaimed room (with placement)


def new_core(policy: str, seed: int) -> MasterCore:
    """A master core with no store, a manual clock and a scheduler running ``policy`` seeded with ``seed``."""
    return MasterCore(clock=ManualClock(), scheduler=Scheduler(SchedulerConfig(policy=policy, seed=seed)),
                      validate=False)


def register(core: MasterCore, machine: TraceMachine) -> int:
    out = core.handle(RegisterMachine(machine.name, machine_capacity(machine), gpu_model=machine.gpu_model,
                                      attributes=dict(machine.attributes)))
    return len(out.events)


def fits(machines: list[TraceMachine], jobs: list[TraceJob], policy: str, seed: int,
         placement: bool = False, reclaim: ReservationPolicy | None = None) -> PackResult:
    """Pack ``jobs`` onto ``machines`` with the master (``reclaim``: then with reclamation as time
    passes); raises AdmissionError if it refuses a job (screen jobs with :func:`refused` first)."""
    core = new_core(policy, seed)
    if reclaim is not None:
        use_policy(core, reclaim)
    events = sum(register(core, m) for m in machines)
    for job in sort_jobs(jobs):
        events += len(core.handle(Submit(job_spec(job))).events)
    for _ in range(MAX_ROUNDS):
        out = core.schedule()
        events += len(out.events)
        if not out.reply["stale"]:
            break
    if reclaim is not None:
        events += settle(core, {job_id(j.name, j.user): j for j in jobs}, reclaim)[0]
    pending = len(core.state.pending)
    result = PackResult(placed=sum(j.tasks for j in jobs) - pending, pending=pending, events=events)
    if placement:
        for task in core.state.tasks.values():
            if task.state is TaskState.RUNNING:
                result.placement.setdefault(task.machine, Counter())[task.job] += 1
        result.reclaimed = reclaimed_tasks(core)
    return result


def refused(jobs: list[TraceJob]) -> dict[str, str]:
    """The jobs the master's admission refuses, by job id, with its first reason."""
    core = new_core("hybrid", 0)
    out: dict[str, str] = {}
    for job in jobs:
        try:
            core.parse_spec(job_spec(job))
        except AdmissionError as e:
            out[job_id(job.name, job.user)] = "; ".join(f"{where}: {what}" for where, what in e.errors)
    return out
