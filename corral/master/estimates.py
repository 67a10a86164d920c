"""The master's estimators (corral.sched.estimates), kept up to date from its own event stream.

:class:`MasterEstimates` reads every event the cell state applies (``CellState.apply``
calls :meth:`MasterEstimates.observe` after it), so the live master and the
simulator feed it through one code path, and a master rebuilt from its log
rebuilds the same estimates:

* ``JobSubmitted``: the job's prior is its spec's ``expected_runtime``; what an
  earlier job of the same name and user measured becomes its history;
* ``JobUpdated``: the spec's ``expected_runtime`` is the prior from then on;
* ``TaskScheduled``: the task's run starts at the event's time (its class is its
  request, the scheduler's equivalence class);
* ``TaskEnded`` via ``finish``: a runtime sample (end less start) for the job and
  its class, and a success; via ``fail``: a failure; other ends (evict, failover,
  restart, kill) say nothing of how long the work takes and only forget the start;
* ``TaskStarted``: what the task's start cost on its machine (its agent measured it: the spawn
  asked for to exec done), a start-up sample keyed by the job's command (first start of that
  command there, or a warm one) and its job, both warm there from then on;
* ``MachineLost``: a machine that comes back comes back cold.

Sans-IO: event times only, never a clock. The state is read after the event applied.
"""

from __future__ import annotations

import itertools
from typing import Any, Hashable

from corral.master import events as ev
from corral.master.queue_wait import LATE_FRACTION
from corral.model.job import TaskState
from corral.sched.estimates.completion import completion_s
from corral.sched.estimates.failures import FailureEstimator
from corral.sched.estimates.runtime import Estimate, RuntimeEstimator
from corral.sched.estimates.startup import StartupEstimator

_VERSIONS = itertools.count(1)  # every estimates' version, process-wide: caches keyed by one never mix two


class MasterEstimates:
    def __init__(self, min_samples: int = 3):
        self.runtimes = RuntimeEstimator(min_samples)
        self.failures = FailureEstimator()
        self.startups = StartupEstimator()
        self.started: dict[str, tuple[float, Hashable]] = {}  # running task -> (start, its class)
        # Runtime estimates are read far more often than they change (each wait answer reads every
        # occupant's): kept per (job, class) until a prior or a sample changes them (``version``).
        self.version = next(_VERSIONS)  # distinct across instances: a restored state's never repeats one
        self._runtime_memo: dict[tuple[str, Hashable], Estimate] = {}

    def _changed(self) -> None:
        self.version = next(_VERSIONS)
        self._runtime_memo.clear()

    def observe(self, state: Any, event: ev.Event) -> None:
        kind = type(event)
        if kind is ev.JobSubmitted:
            self.runtimes.job_submitted(event.job, _expected(state, event.job))
            self._changed()
        elif kind is ev.JobUpdated:
            self.runtimes.set_expected(event.job, _expected(state, event.job))
            self._changed()
        elif kind is ev.TaskScheduled:
            task = state.tasks[event.task]
            self.started[event.task] = (event.t, task.request)
        elif kind is ev.TaskEnded:
            start = self.started.pop(event.task, None)
            task = state.tasks[event.task]
            job = task.job
            if start is None:  # started before a checkpoint this state was restored from: its history says
                start = _from_history(state, task, running=False)
            if event.via == "finish":
                if start is not None:
                    self.runtimes.observe(job, start[1], event.t - start[0])
                    self._changed()
                self.failures.observe(job, False)
            elif event.via == "fail":
                self.failures.observe(job, True)
        elif kind is ev.TaskStarted:
            task = state.tasks[event.task]
            self.startups.observe(event.machine, startup_keys(state, task), event.startup_s)
        elif kind is ev.MachineLost:
            self.startups.forget_machine(event.machine)
        elif kind is ev.JobKilled:
            for name in state.job_tasks.get(event.job, ()):
                self.started.pop(name, None)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``estimates`` (corral.master.estimates_codec)."""
        from corral.master.estimates_codec import estimates_to_dict

        return estimates_to_dict(self)

    def restore(self, state: Any, saved: dict[str, Any] | None = None) -> None:
        """After a checkpoint restore: what the checkpoint kept (``saved``, its ``estimates``). A
        checkpoint from before they were kept has only the live jobs' spec priors to give (running
        starts then come from the tasks' history; what was measured before it is lost)."""
        self._changed()
        if saved is not None:
            from corral.master.estimates_codec import estimates_from_dict

            estimates_from_dict(self, saved)
            return
        for jid in state.jobs:
            self.runtimes.set_expected(jid, _expected(state, jid))

    def runtime(self, job: str, cls: Hashable = None) -> Estimate:
        """The runtime estimate of a task of ``job`` (of class ``cls``)."""
        key = (job, cls)
        found = self._runtime_memo.get(key)
        if found is None:
            found = self._runtime_memo[key] = self.runtimes.estimate(job, cls)
        return found

    def remaining_s(self, state: Any, task: str, now: float) -> float | None:
        """The estimated seconds left of running ``task``, None where nothing is known of its runtime.
        One past its estimate is given a tenth of it more (late, not endless: as RuntimeWait)."""
        found = self.expected_end(state, task)
        if found is None:
            return None
        end, late_s = found
        return end - now if end > now else late_s

    def expected_end(self, state: Any, task: str) -> tuple[float, float] | None:
        """When running ``task`` is expected to end, and the seconds a late one is given; None where
        nothing is known of its runtime. Changes only with the estimates (``version``)."""
        start = self.started.get(task)
        record = state.tasks.get(task)
        if record is None:
            return None
        if start is None:
            start = _from_history(state, record, running=True)
        if start is None:
            return None
        estimate = self.runtime(record.job, start[1])
        if not estimate.known:
            return None
        return start[0] + estimate.mean_s, LATE_FRACTION * estimate.mean_s


def startup_keys(state: Any, task: Any) -> tuple[Hashable, ...]:
    """What a start warms on its machine: the job's command first (what a first start fetches; it
    decides first or warm), then the job (what the estimates are asked by). Both survive a
    checkpoint as JSON (a list for the command's pair)."""
    job = state.jobs.get(task.job)
    command = getattr(job.spec, "command", None) if job is not None else None
    return ((("command", command),) if command else ()) + (task.job,)


def _from_history(state: Any, task: Any, running: bool) -> tuple[float, Hashable] | None:
    """A run's (start, class) from the task's history (checkpointed, unlike ``started``)."""
    if running and task.state is not TaskState.RUNNING:
        return None
    history = task.history if running else task.history[:-1]  # an ended task: its run before the end
    t = next((h.t for h in reversed(history) if h.new == TaskState.RUNNING.value and h.old != h.new), None)
    if t is None:
        return None
    return t, task.request if running else state.jobs[task.job].request_of_task(task)


def _expected(state: Any, jid: str) -> float | None:
    job = state.jobs.get(jid)
    return getattr(job.spec, "expected_runtime", None) if job is not None else None


class CompletionEstimate:
    """``(request, machine) -> seconds``: the completion-time scorer's estimate from the master's
    estimators (corral.sched.estimates.completion): the request's wait there (``wait``, the machine
    queues' ExpectedWait) + (its start-up there + its class's runtime) / (1 - p), p the failure
    prior (a request names no job, so no job's own figures). The start-up is the machine's warm
    mean where a task of the request's job started before, else its first-start mean (the cell's
    where the machine has none; 0 where no agent measured any): a request that names no job (most
    do not) cannot say what it runs, so it is taken as a first start, the dearer case. An unknown
    runtime is inf (the scorer then prefers nothing over it, as it scores every such machine 0)."""

    def __init__(self, state: Any, wait: Any, clock: Any = None):
        self.state, self.wait, self.clock = state, wait, clock
        # A round scores every task of a class on the same candidates, and nothing it reads (the
        # state, its estimates, the time) changes within it: answers are kept per request until
        # one of those moves.
        self._at: tuple | None = None
        self._kept: dict[Any, dict[str, float]] = {}

    def __call__(self, request: Any, machine: str) -> float:
        return self.many(request, (machine,))[0]

    def many(self, request: Any, machines: Any) -> list[float]:
        """The estimate on each of ``machines``: the request's runtime and failure prior are read once
        (a scoring pass asks for one request on every candidate)."""
        if self.clock is None:
            return self._compute(request, machines)
        state = self.state
        at = (self.clock.now(), state.seq, state.estimates.version)
        if at != self._at:
            self._at, self._kept = at, {}
        kept = self._kept.setdefault(request, {})
        missing = [m for m in machines if m not in kept]
        if missing:
            kept.update(zip(missing, self._compute(request, missing)))
        return [kept[m] for m in machines]

    def _compute(self, request: Any, machines: Any) -> list[float]:
        estimates = self.state.estimates
        runtime = estimates.runtimes.for_class(request, request.job)
        if not runtime.known:
            return [float("inf")] * len(machines)
        p = estimates.failures.probability(request.job) if request.job else estimates.failures.prior_p
        startups, mean_s = estimates.startups, runtime.mean_s
        many = getattr(self.wait, "many", None)  # every machine's wait at once, where the wait offers it
        waits = many(machines, request) if many is not None else [self.wait(m, request) for m in machines]
        return [completion_s(float(w), startup_of(startups, request, m), mean_s, p) for m, w in zip(machines, waits)]


def startup_of(startups: StartupEstimator, request: Any, machine: str) -> float:
    """The start-up estimate of a task of ``request`` on ``machine``: warm where its job started."""
    warm = bool(request.job) and startups.is_warm(machine, request.job)
    return startups.warm_s(machine) if warm else startups.first_s(machine)


def attach_completion(scheduler: Any, completion: Any) -> int:
    """Hand ``completion`` to the completion-time scorers of ``scheduler``'s policy (how many)."""
    found = 0
    for scorer, _ in scheduler.policy.scorers:
        if hasattr(scorer, "completion") and getattr(scorer, "name", "") == "completion-time":
            scorer.completion = completion
            found += 1
    return found
