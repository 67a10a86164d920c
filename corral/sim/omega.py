"""Omega's central experiment (Schwarzkopf et al., EuroSys 2013, §4) on corral's own master and scheduler.

A scheduler here is a :class:`SchedulerProcess`: a queue of jobs taken one at a time, each a
*transaction* — the master's own snapshot (corral.master.commit ``snapshot(..., only=the job's
tasks)``, through ``MasterCore.snapshot``), a plan from the real :class:`Scheduler` on that
snapshot, then, after the *decision time* has passed on the engine's virtual clock, the master's
own optimistic commit (``MasterCore.commit``). Omega's model of the decision time is
``t_job + t_task x tasks`` (its defaults: 0.1 s and 5 ms, the service scheduler's ``t_job`` varied).

* **monolithic**: one scheduler, one queue in arrival order; service and batch jobs alike take
  their own decision times, so a batch job waits behind every slow service decision;
* **shared**: two schedulers, ``service`` (latency-sensitive jobs) and ``batch`` (the rest), each
  with its own queue, snapshot and commit on the one shared cell state. A placement the commit
  rejects as stale (its machine changed and it no longer fits) is a *conflict*; the job is
  retried at once, at the head of its queue, for its stale tasks only (incremental commit), with
  a decision time of its own.

A job whose tasks found no room waits, its tasks parked in the master's unschedulable queue, and
goes back to the end of its scheduler's queue when the master's wake rules let one of them out.
Jobs arriving at t=0 are the cell as it was: the master's ordinary round (``MasterCore.schedule``)
places them before the schedulers start, and they are not measured. What is measured, over the
arrival window (t=0 to the last arrival): each job's **wait** (submission to the commit that placed
the last of its tasks), each scheduler's **busyness** (the fraction of the window spent deciding)
and the **conflict fraction** (of the transactions begun in the window, those with at least one
conflicting placement, as Omega counts it, for all schedulers and for each; ``schedulers`` also gives
each one's counts over the whole run, the drain after the window included).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from corral.master.events import JobSubmitted, TaskEnded, TaskScheduled
from corral.master.state import InvariantError
from corral.model.job import TaskState
from corral.sched.policy import DEFAULT_POLICY
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace

MODES = ("monolithic", "shared")
SERVICE_APPCLASS = "latency-sensitive"  # what the service scheduler takes; everything else is batch


@dataclass(frozen=True)
class DecisionTime:
    """Omega's ``t_decision = t_job + t_task x tasks`` (simulated seconds)."""

    job_s: float
    task_s: float = 0.005

    def of(self, tasks: int) -> float:
        return self.job_s + self.task_s * tasks


@dataclass(frozen=True)
class OmegaConfig:
    mode: str = "shared"
    service_decision_s: float = 1.0  # t_job of a service job
    batch_decision_s: float = 0.1  # t_job of a batch job
    task_decision_s: float = 0.005  # t_task, both kinds
    policy: str = DEFAULT_POLICY
    seed: int = 0
    validate: bool = False  # the master's invariants after every command (slow; tests)
    check_commits: bool = False  # conservation after every commit (tests)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if min(self.service_decision_s, self.batch_decision_s, self.task_decision_s) < 0:
            raise ValueError("decision times must be >= 0")


class SchedulerProcess:
    """One scheduler: its queue of jobs, one transaction at a time (snapshot, decide, commit)."""

    def __init__(self, name: str, scheduler: Scheduler, replay: "OmegaReplay"):
        self.name = name
        self.scheduler = scheduler
        self.replay = replay
        self.queue: deque[str] = deque()  # jobs to decide, first first
        self.held: set[str] = set()  # jobs this scheduler has: queued, deciding or waiting for room
        self.waiting: dict[str, None] = {}  # jobs whose pending tasks are all parked (no room)
        self.busy = False
        self.intervals: list[tuple[float, float]] = []  # (snapshot, commit) of every transaction
        self.outcomes: list[bool] = []  # whether each transaction had a conflict
        self.transactions = 0
        self.conflicted = 0  # transactions with at least one stale placement
        self.conflicts = 0  # stale placements
        self.placed = 0

    def take(self, job: str) -> None:
        if job not in self.held:
            self.held.add(job)
            self.queue.append(job)

    def start(self) -> None:
        """Begin the next transaction, if idle and a job is queued."""
        replay = self.replay
        core = replay.core
        while not self.busy and self.queue:
            job = self.queue.popleft()
            names = replay.pending_of(job)
            if not names:
                self.held.discard(job)
                continue
            rnd = core.snapshot(set(names))
            if not rnd.pending and not rnd.in_allocs:  # every task parked or held back: wait for room
                rnd.view.release()
                self.waiting[job] = None
                continue
            plan = self.scheduler.schedule(rnd.view, rnd.pending)
            self.busy = True
            replay.engine.after(replay.decision_of(job).of(len(rnd.pending)), self._commit, job, rnd, plan,
                                replay.engine.now)

    def _commit(self, job: str, rnd: Any, plan: Any, started: float) -> None:
        replay = self.replay
        out = replay.core.commit(rnd, plan)
        replay._apply(out)
        self.busy = False
        self.intervals.append((started, replay.engine.now))
        self.transactions += 1
        stale = out.reply["stale"]
        self.outcomes.append(bool(stale))
        self.placed += out.reply["placed"]
        if stale:
            self.conflicted += 1
            self.conflicts += len(stale)
            self.queue.appendleft(job)  # retried at once, for what went stale
        elif replay.pending_of(job):
            runnable = replay.core.queue.runnable
            if out.reply["placed"] and any(n in runnable for n in replay.pending_of(job)):
                self.queue.append(job)
            else:
                self.waiting[job] = None
        else:
            self.held.discard(job)
        replay.committed()

    def wake(self, runnable: dict[str, None]) -> None:
        """Waiting jobs with a task the master's queue let out go back to the end of the queue."""
        for job in list(self.waiting):
            names = self.replay.pending_of(job)
            if not names:
                del self.waiting[job]
                self.held.discard(job)
            elif any(n in runnable for n in names):
                del self.waiting[job]
                self.queue.append(job)

    def busy_within(self, end: float) -> float:
        """Seconds spent deciding in [0, end]."""
        return sum(max(0.0, min(b, end) - a) for a, b in self.intervals if a < end)

    def conflicts_within(self, end: float) -> tuple[int, int]:
        """(transactions with a conflict, transactions) among those that began before ``end``."""
        began = [c for (a, _), c in zip(self.intervals, self.outcomes) if a < end]
        return sum(began), len(began)


class OmegaReplay(Replay):
    """A :class:`Replay` whose scheduling is Omega's schedulers instead of the master's rounds."""

    def __init__(self, trace: Trace, config: OmegaConfig = OmegaConfig()):
        super().__init__(trace, ReplayConfig(policy=config.policy, seed=config.seed, validate=config.validate))
        self.omega = config
        self.service_decision = DecisionTime(config.service_decision_s, config.task_decision_s)
        self.batch_decision = DecisionTime(config.batch_decision_s, config.task_decision_s)
        if config.mode == "monolithic":
            one = SchedulerProcess("monolithic", self.core.scheduler, self)
            self.processes = {"monolithic": one}
            self._route: Callable[[str], SchedulerProcess] = lambda job: one
        else:
            self.processes = {name: SchedulerProcess(name, self._scheduler(config.seed + i), self)
                              for i, name in enumerate(("service", "batch"))}
            self._route = lambda job: self.processes["service" if self.is_service(job) else "batch"]
        self.starting = True  # t=0: the jobs arriving now are the cell as it was
        self.initial: set[str] = set()
        self.submitted: dict[str, float] = {}  # measured job -> when it was submitted
        self.left: dict[str, int] = {}  # measured job -> tasks not yet placed once
        self.waits: dict[str, float] = {}  # measured job -> submission to its last task's first placement
        self._placed_once: set[str] = set()

    def _scheduler(self, seed: int) -> Scheduler:
        c = self.config
        return Scheduler(SchedulerConfig(policy=c.policy, seed=seed, queue_order=c.queue_order,
                                         gang_reserve_after=c.gang_reserve_after), shares=c.shares)

    def is_service(self, job: str) -> bool:
        return self.by_id[job].appclass == SERVICE_APPCLASS

    def decision_of(self, job: str) -> DecisionTime:
        return self.service_decision if self.is_service(job) else self.batch_decision

    def pending_of(self, job: str) -> list[str]:
        pending = self.core.state.pending
        return [n for n in self.core.state.job_tasks.get(job, ()) if n in pending]

    # ---- the master's events tell who gets what -------------------------------------------------

    def _apply(self, out: Any) -> None:
        super()._apply(out)
        state = self.core.state
        for e in out.events:
            kind = type(e)
            if kind is TaskScheduled:
                if e.task not in self._placed_once:
                    self._placed_once.add(e.task)
                    job = state.tasks[e.task].job
                    if job in self.left:
                        self.left[job] -= 1
                        if not self.left[job]:
                            self.waits[job] = e.t - self.submitted[job]
            elif kind is JobSubmitted:
                if self.starting and e.t == 0.0:
                    self.initial.add(e.job)
                else:
                    self.submitted[e.job] = e.t
                    self.left[e.job] = len(state.job_tasks[e.job])
                    self._route(e.job).take(e.job)
            elif kind is TaskEnded and not self.starting:
                task = state.tasks[e.task]
                if task.state is TaskState.PENDING:  # evicted or lost: its job is planned again
                    self._route(task.job).take(task.job)

    def _changed(self) -> None:
        """Something changed (arrival, finish, kill): idle schedulers start; no master round runs."""
        if self.starting:
            self.starting = False
            if self.initial:
                self._start_cell()
        self._dispatch()

    def _start_cell(self) -> None:
        """The jobs of t=0 placed by the master's ordinary rounds, at once; then the schedulers run."""
        for _ in range(10):
            if not self.core.state.pending or not self.core.schedule(persist=self._apply).placed:
                break
        for job in sorted(self.initial):
            if self.pending_of(job):
                self._route(job).take(job)

    def _dispatch(self) -> None:
        if any(p.waiting for p in self.processes.values()):
            self.core.queue.wake(self.core.state.view)
            for p in self.processes.values():
                p.wake(self.core.queue.runnable)
        for p in self.processes.values():
            p.start()

    def committed(self) -> None:
        if self.omega.check_commits:
            self.check()
            if (self.core.state.view.free < 0).any():
                raise InvariantError("a machine is over-committed after a commit")
        self._dispatch()

    # ---- running -----------------------------------------------------------------------------------

    def measured(self, kind: str) -> list[str]:
        want = kind == "service"
        return [j for j in self.submitted if self.is_service(j) == want]

    def run_omega(self) -> dict[str, Any]:
        """Run past the arrival window until every measured job is placed or nothing is left to happen;
        the figures of this run."""
        self.setup()
        window = max((j.arrival for j in self.trace.jobs), default=0.0)
        step = max(window / 200, 1.0)
        engine, t = self.engine, 0.0
        while True:
            engine.run(until=t)
            self._sample()
            if t >= window and (len(self.waits) == len(self.submitted) or not engine.pending()):
                break
            t += step
        self.check()
        return self._figures(window, engine.now)

    def _figures(self, window: float, end: float) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.omega.mode, "service_decision_s": self.omega.service_decision_s}
        for kind in ("batch", "service"):
            jobs = self.measured(kind)
            waits = np.array([self.waits.get(j, end - self.submitted[j]) for j in jobs] or [0.0])
            out[f"{kind}_wait_p50_s"] = _r(np.percentile(waits, 50))
            out[f"{kind}_wait_p90_s"] = _r(np.percentile(waits, 90))
            out[f"{kind}_wait_mean_s"] = _r(waits.mean())
            out[f"{kind}_unplaced"] = sum(1 for j in jobs if j not in self.waits)
        procs = self.processes.values()
        out["busyness"] = {p.name: _r(p.busy_within(window) / window if window else 0.0) for p in procs}
        counts = [p.conflicts_within(window) for p in procs]
        transactions = sum(n for _, n in counts)
        out["conflict_fraction"] = _r(sum(c for c, _ in counts) / transactions if transactions else 0.0)
        out["schedulers"] = {p.name: {"transactions": p.transactions, "conflicted": p.conflicted,
                                      "conflicts": p.conflicts, "placed": p.placed,
                                      "conflict_fraction": _r(c / n if n else 0.0)}
                             for p, (c, n) in zip(procs, counts)}
        out["preemptions"] = self.metrics.ended.get("evict", 0)
        out["window_s"] = _r(window)
        out["end_s"] = _r(end)
        return out


def _r(x: float) -> float:
    return round(float(x), 6)
