"""Replay a trace through the real master core and scheduler under a virtual clock (Fauxmaster).

The same :class:`MasterCore` the live master runs takes the commands a cell
would see — machines registering, jobs submitted at their arrival times,
agents reporting finished tasks, jobs killed at their departure times — and
its effects (start, kill) go to simulated agents instead of HTTP. Scheduling
runs the master's one round (``MasterCore.schedule``, corral.master.rounds),
as the live master's loop does: after something changed and a task waits,
one round at most every ``round_interval_s`` of simulated time. Nothing is
persisted: events are applied by the core as it emits them.

Time passing (``tick_interval_s``): the master gets a ``Tick`` every interval, as
the live master's loop sends one every second, so its straggler rule copies slow
tasks (``speculation``) and machine queues (``machine_queues``) move copies whose
wait grew. Without it no Tick is sent and neither happens.

Reclamation (Borg §5.5), with ``usage_interval_s``: every interval each
machine's simulated agent reports what its tasks use (``UsageReport``, the
command a live agent's poll becomes), so the master's own reservation book
(corral/master/reservation_book.py, reservations.py) decays reservations as
simulated time passes, its reclamation step (reclamation.py) evicts and
throttles, and the scheduler's ``ReclaimableFit`` places non-production work in
the room reservations leave. Without it no usage is reported: every
reservation stays at its limit and nothing is reclaimed.

Command ids come from the run's seed (``CommandIds.seeded``), so two runs
with the same trace, configuration and seed write identical event logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from corral.master.copies import task_of
from corral.master.errors import AdmissionError
from corral.master.events import TaskEnded
from corral.master.commands import AgentReport, CommandIds, Kill, RegisterMachine, Submit, Tick, UsageReport
from corral.master.core import MasterCore, Outcome
from corral.master.queue_placement import MachineQueueConfig
from corral.master.records import job_id
from corral.master.reservations import ReservationPolicy, Reservations
from corral.master.state import InvariantError
from corral.model.job import TaskState
from corral.sched.policy import DEFAULT_POLICY
from corral.sched.queue import DEFAULT_USER_ORDER
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.shares import ShareConfig
from corral.sched.speculation import SpeculationConfig
from corral.sim.agents import SimulatedAgents, UsageAt, trace_usage
from corral.sim.engine import Engine
from corral.sim.metrics import Metrics
from corral.sim.trace import Trace, TraceJob, job_spec, machine_capacity

DEFAULT_SAMPLES = 500  # metric samples over a run, when no interval is given


@dataclass(frozen=True)
class ReplayConfig:
    policy: str = DEFAULT_POLICY
    seed: int = 0
    round_interval_s: float = 1.0
    sample_interval_s: float | None = None  # None: the run's span / DEFAULT_SAMPLES
    until: float | None = None  # stop here (simulated seconds); None: when the trace's last event is done
    validate: bool = False  # check invariants after every command and at every sample (slow; for tests)
    queue_order: str = DEFAULT_USER_ORDER  # inside a band: drf or round-robin
    shares: ShareConfig | None = None  # DRF's weights and groups (None: every weight 1)
    gang_reserve_after: int | None = 3  # passes before a waiting gang reserves machines (None: never)
    usage_interval_s: float | None = None  # agents report usage this often (reclamation); None: never
    reservation_policy: ReservationPolicy | None = None  # the master's reservation estimator (None: its default)
    tick_interval_s: float | None = None  # the master gets a Tick this often (stragglers, queue moves); None: never
    speculation: SpeculationConfig | None = None  # the master's straggler rule (None: its default)
    machine_queues: MachineQueueConfig | None = None  # Apollo's machine queues (None: off, the master's default)


@dataclass
class ReplayResult:
    summary: dict[str, Any]  # deterministic for a trace, config and seed
    samples: list[tuple[float, ...]]
    delays: list[float]
    round_seconds: list[float]  # wall time of each scheduling round (not deterministic)
    seconds: float
    events: int


class Replay:
    def __init__(self, trace: Trace, config: ReplayConfig = ReplayConfig(), usage_at: UsageAt = trace_usage):
        self.trace = trace
        self.config = config
        self.engine = Engine()
        self.by_id: dict[str, TraceJob] = {job_id(j.name, j.user): j for j in trace.jobs}
        self.agents = SimulatedAgents(self.engine, self._job_of_task, self._report, usage_at)
        scheduler = Scheduler(SchedulerConfig(policy=config.policy, seed=config.seed, queue_order=config.queue_order,
                                              gang_reserve_after=config.gang_reserve_after), shares=config.shares)
        self.ids = CommandIds.seeded(config.seed)  # the commands' ids
        self.core = MasterCore(clock=self.engine.clock, transport=self.agents, scheduler=scheduler,
                               cell="sim", validate=config.validate, ids=plan_ids(config.seed),
                               speculation=config.speculation, machine_queues=config.machine_queues)
        if config.reservation_policy is not None:  # before any report: the book's estimator, another policy
            self.core.reservations.estimator = Reservations(config.reservation_policy)
        self.usage_reports = 0
        self.finishes: dict[str, int] = {}  # task -> times the master counted it finished
        self.periodic = 0  # periodic actions (ticks, usage reports) on the engine's heap
        self.reclaim_evictions = 0  # reclaimed tasks the master evicted on a usage report (not preemptions)
        self.log: list[dict[str, Any]] | None = None  # every event's dict, when asked for (keep_log)
        self.metrics: Metrics | None = None
        self.round_due = False  # a round is on the heap
        self.rejected: list[tuple[str, str]] = []  # (job, why) the master refused at submission
        self.round_seconds: list[float] = []
        self.rounds = 0
        self.core_events = 0

    # ---- commands into the master ------------------------------------------------------------------

    def _apply(self, out: Outcome) -> None:
        self.core_events += len(out.events)
        for event in out.events:
            if type(event) is TaskEnded and event.via == "finish":
                self.finishes[event.task] = self.finishes.get(event.task, 0) + 1
        if self.log is not None:
            self.log.extend(e.to_dict() for e in out.events)
        self.metrics.observe(out.events)
        self.core.deliver(out.effects)

    def command(self, cmd: Any) -> Outcome:
        """Apply one command now, as the trace's own commands are (scripts and tests add their own:
        machine loss, ticks, reports)."""
        out = self.core.handle(cmd)
        self._apply(out)
        self._changed()
        return out

    def _job_of_task(self, task: str) -> TraceJob:
        return self.by_id[self.core.state.tasks[task_of(task)].job]  # a speculative copy's: its task's

    def _report(self, machine: str, statuses: list[dict[str, Any]]) -> None:
        self.command(AgentReport(machine, statuses, id=self.ids()))

    def _arrive(self, index: int) -> None:
        jobs, now = self.trace.jobs, self.engine.now
        while index < len(jobs) and jobs[index].arrival <= now:
            job = jobs[index]
            try:
                self._apply(self.core.handle(Submit(job_spec(job), id=self.ids())))
            except AdmissionError as e:
                self.rejected.append((job.name, e.errors[0][1] if e.errors else str(e)))
            else:
                if job.departure is not None:
                    self.engine.at(max(job.departure, now), self._depart, job)
            index += 1
        if index < len(jobs):
            self.engine.at(jobs[index].arrival, self._arrive, index)
        self._changed()

    def _depart(self, job: TraceJob) -> None:
        jid = job_id(job.name, job.user)
        if not self.core.state.jobs[jid].state.ended:
            self.command(Kill(jid, id=self.ids()))

    def _changed(self) -> None:
        """Something that may let a waiting task in happened: a round follows, unless one is due."""
        if not self.round_due and self.core.state.pending:
            self.round_due = True
            self.engine.after(self.config.round_interval_s, self._round)

    def _round(self) -> None:
        self.round_due = False
        started = time.perf_counter()
        result = self.core.schedule(persist=self._apply)
        self.round_seconds.append(time.perf_counter() - started)
        self.rounds += 1
        self.metrics.unplaced_attempts += result.unplaced

    def _usage(self) -> None:
        """Every machine with running tasks reports their usage now; the master's reservation book
        and reclamation step take it from there."""
        now = self.engine.now
        for machine in sorted(self.agents.on):
            out = self.command(UsageReport(machine, self.agents.usage_report(machine, now), id=self.ids()))
            self.usage_reports += 1
            self.reclaim_evictions += len(out.reply.get("evicted", ()))
        self._again(self.config.usage_interval_s, self._usage)

    def _tick(self) -> None:
        """Time passed, as the live master's loop tells its core every second: stragglers get copies,
        queued copies whose wait grew move, rollouts progress."""
        self.command(Tick(id=self.ids()))
        self._again(self.config.tick_interval_s, self._tick)

    def _again(self, interval: float, action: Callable[[], None]) -> None:
        """A periodic action comes back after ``interval`` while anything but periodic actions is left
        to happen (or up to ``until``): ticks and usage reports alone never keep a run going."""
        self.periodic -= 1  # the one that just ran
        until = self.config.until
        if (self.engine.pending() > self.periodic if until is None else self.engine.now + interval <= until):
            self.periodic += 1
            self.engine.after(interval, action)

    def _sample(self) -> None:
        self.metrics.sample(self.engine.now, self.core.state.view.free, self.agents.usage)
        if self.config.validate:
            self.check()

    # ---- running -------------------------------------------------------------------------------------

    def setup(self) -> None:
        for m in self.trace.machines:
            self.agents.add_machine(m.name, m.cpu, m.memory)
            out = self.core.handle(RegisterMachine(m.name, machine_capacity(m), gpu_model=m.gpu_model,
                                                   attributes=dict(m.attributes), id=self.ids()))
            self.core_events += len(out.events)
            if self.log is not None:
                self.log.extend(e.to_dict() for e in out.events)
        self.metrics = Metrics(self.core.state, self.core.state.view.capacity.sum(axis=0))
        if self.trace.jobs:
            self.engine.at(self.trace.jobs[0].arrival, self._arrive, 0)
        if self.config.usage_interval_s is not None:
            if self.config.usage_interval_s <= 0:
                raise ValueError(f"usage_interval_s: expected > 0, got {self.config.usage_interval_s}")
            self.periodic += 1
            self.engine.after(self.config.usage_interval_s, self._usage)
        if self.config.tick_interval_s is not None:
            if self.config.tick_interval_s <= 0:
                raise ValueError(f"tick_interval_s: expected > 0, got {self.config.tick_interval_s}")
            self.periodic += 1
            self.engine.after(self.config.tick_interval_s, self._tick)

    def run(self, progress: Callable[[float, float], None] | None = None) -> ReplayResult:
        """Run until ``config.until``, or else until nothing is left to happen (every arrival,
        finish and departure done; services without an end keep running). Metrics are sampled
        every ``sample_interval_s``; ``progress(now, horizon)`` is called at each sample."""
        started = time.perf_counter()
        self.setup()
        until = self.config.until
        horizon = until if until is not None else self.trace.horizon
        interval = self.config.sample_interval_s or max(horizon / DEFAULT_SAMPLES, 1.0)
        engine = self.engine
        t = 0.0
        while True:
            engine.run(until=t)
            self._sample()
            if progress:
                progress(min(t, horizon), horizon)
            if until is not None and t >= until:
                break
            if until is None and not engine.pending():
                break
            t = t + interval if until is None else min(t + interval, until)
        end = until if until is not None else engine.last_event
        self.check()  # once at the end whatever the config: a replay that lost resources has no result
        seconds = time.perf_counter() - started
        return ReplayResult(self._summary(end), list(self.metrics.samples), list(self.metrics.delays),
                            list(self.round_seconds), seconds, engine.processed)

    def check(self) -> None:
        """Conservation: the agents run exactly the tasks the master has running, where it put them,
        and queue exactly the copies the master's queue book has; on every machine free resources plus
        the running tasks' requests make its capacity (GPUs included: a cancelled copy's resources are
        back); no task was counted finished twice; the metrics count the same running and pending tasks
        as the state."""
        state = self.core.state
        book = {(c.task, c.machine) for queue in state.machine_queues.by_machine.values() for c in queue.values()}
        if book != self.agents.queued_copies():
            extra, missing = sorted(self.agents.queued_copies() - book)[:3], sorted(book - self.agents.queued_copies())[:3]
            raise InvariantError(f"agents queue {extra} the master does not; the master queues {missing} no agent does")
        twice = [t for t, n in self.finishes.items() if n > 1]
        if twice:
            raise InvariantError(f"tasks {sorted(twice)[:3]} were counted finished more than once")
        view = state.view
        everything = {n: t for n, t in state.tasks.items() if t.state is TaskState.RUNNING}
        running = {n: t for n, t in everything.items() if not state.is_alloc(n)}  # no agent runs an alloc
        held = self.agents.running
        copies = {c.id: c for c in state.copies.values()}  # stragglers' speculative copies run too
        if running.keys() | copies.keys() != held.keys():
            wanted = running.keys() | copies.keys()
            extra, missing = sorted(held.keys() - wanted)[:3], sorted(wanted - held.keys())[:3]
            raise InvariantError(f"agents run {extra} the master does not; the master runs {missing} no agent does")
        used = np.zeros_like(view.capacity)
        gpu_used = np.zeros_like(view.gpu_idle)
        for name, task in everything.items():
            if name in running and (held[name][0] != task.machine or held[name][1] != task.generation):
                raise InvariantError(f"task {name}: master has it on {task.machine} generation {task.generation}, "
                                     f"the agents on {held[name][0]} generation {held[name][1]}")
            at = view.index[task.machine]
            used[at] += task.request.vector
            for gpu in task.gpus:
                gpu_used[at, gpu] += task.request.gpu_milli
        for name, copy in copies.items():
            if held[name][0] != copy.machine:
                raise InvariantError(f"copy {name}: master has it on {copy.machine}, the agents on {held[name][0]}")
            used[view.index[copy.machine]] += state.tasks[copy.task].request.vector
        if not np.array_equal(view.free + used, view.capacity):
            bad = view.names[int(np.flatnonzero((view.free + used != view.capacity).any(axis=1))[0])]
            raise InvariantError(f"machine {bad}: free plus running requests is not its capacity")
        check_allocs(state, everything)
        if not np.array_equal(view.gpu_idle + gpu_used, view.gpu_idle_when_empty):
            raise InvariantError("idle GPU shares plus running tasks' shares are not the machines' GPUs")
        if self.metrics.running.keys() != everything.keys() or self.metrics.pending_since.keys() != state.pending.keys():
            raise InvariantError("the metrics count different running or pending tasks than the state")

    def _summary(self, end: float) -> dict[str, Any]:
        trace = self.trace
        return {
            "trace": trace.name,
            "policy": self.config.policy,
            "seed": self.config.seed,
            "machines": len(trace.machines),
            "jobs": len(trace.jobs),
            "tasks": trace.task_count(),
            "simulated_s": round(end, 3),
            "rounds": self.rounds,
            "core_events": self.core_events,
            "started": self.agents.started,
            "finished": self.agents.finished,
            **({"started_from_queue": self.agents.started_from_queue,
                "cancelled_in_queue": self.agents.cancelled_in_queue}
               if self.config.machine_queues is not None and self.config.machine_queues.enabled else {}),
            "rejected": len(self.rejected),
            "rejected_examples": [f"{name}: {why}" for name, why in self.rejected[:5]],
            **({"usage_reports": self.usage_reports, "reclaim_evictions": self.reclaim_evictions}
               if self.config.usage_interval_s is not None else {}),
            **self.metrics.summary(end),
            "notes": list(trace.notes),
        }


def check_allocs(state: Any, running: dict[str, Any]) -> None:
    """Alloc-level conservation: a machine holds each alloc's resources once (the alloc's request) and
    nothing more for the tasks inside it (their requests are empty); the tasks in an alloc run on its
    machine and their limits sum to what the alloc's bookkeeping says, within what it holds."""
    used: dict[str, np.ndarray] = {}
    for name, task in running.items():
        if task.alloc is None:
            continue
        if task.request.vector.any():
            raise InvariantError(f"task {name} in alloc {task.alloc} is counted against its machine too")
        alloc = running.get(task.alloc)
        if alloc is None or alloc.machine != task.machine:
            raise InvariantError(f"task {name} runs in alloc {task.alloc}, which is not placed on {task.machine}")
        job = state.jobs[task.job]
        used[task.alloc] = used.get(task.alloc, 0) + job.need_of(task.version)
    for alloc, total in used.items():
        capacity = state.jobs[running[alloc].job].spec.resources.to_resources().vector()
        if not np.array_equal(total, state.alloc_used(alloc)) or (total > capacity).any():
            raise InvariantError(f"alloc {alloc}: its tasks use {total.tolist()} of {capacity.tolist()}, "
                                 f"its bookkeeping says {state.alloc_used(alloc).tolist()}")


def plan_ids(seed: int) -> CommandIds:
    """The ids of a replay's plan commits (a stream apart from the commands', so a live master handed
    the same commands and this id source logs the same events)."""
    return CommandIds(f"s{seed}p")


def replay(trace: Trace, config: ReplayConfig = ReplayConfig(), progress=None) -> ReplayResult:
    return Replay(trace, config).run(progress)
