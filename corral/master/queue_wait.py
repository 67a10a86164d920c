"""How long a task would wait on a machine before it starts: the seam the estimators plug into.

Machine queues (machine_queues.py, queue_placement.py) need one number, the
expected wait of a request on a machine, through :class:`ExpectedWait`:
``expected_wait(machine_name, request) -> seconds`` (``inf``: it will not
start there as things stand). corral.sched.estimates' wait-time matrix
(``WaitTimeMatrix.expected_wait_s(machine, cpu, memory_bytes)``) is meant to be
handed in through the core's ``expected_wait`` parameter; until then
:class:`RuntimeWait` is the default, a documented and deliberately simple estimate:

* each running task on the machine ends ``expected_runtime`` after it
  started (its job spec's ``expected_runtime`` if it has one, else
  ``default_runtime_s``); one that has run past it is given a tenth of its
  runtime more (it is late, not endless);
* the tasks queued there ahead start, in their order, as soon as enough of
  those ends freed room for them, and run their expected runtimes too;
* the request starts at the first end after which it fits (at once where it
  fits the machine's free room now and nothing is queued there: the common
  case of a scheduling round's candidates, answered without the walk).

Pure reads of the state; the clock gives "now".
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Protocol

import numpy as np

from corral.master.clock import Clock
from corral.model.job import TaskState
from corral.sched.request import TaskRequest

DEFAULT_RUNTIME_S = 60.0
LATE_FRACTION = 0.1  # a task past its expected runtime is given this fraction of it more


class ExpectedWait(Protocol):
    def __call__(self, machine: str, request: TaskRequest) -> float: ...


def runtime_of(job: Any, default_s: float) -> float:
    """A job's expected runtime in seconds: its spec's ``expected_runtime`` (where the spec has the
    field: the estimators add it), else ``default_s``."""
    value = getattr(job.spec, "expected_runtime", None)
    try:
        seconds = float(value) if value is not None else default_s
    except (TypeError, ValueError):
        return default_s
    return seconds if seconds > 0 and math.isfinite(seconds) else default_s


def started_at(task: Any) -> float | None:
    """When the task's current run began (its last move to running), or None."""
    for t in reversed(task.history):
        if t.new == TaskState.RUNNING.value and t.old != TaskState.RUNNING.value:
            return t.t
    return None


class RuntimeWait:
    """The default :class:`ExpectedWait` over a :class:`CellState` (see the module's contract)."""

    def __init__(self, state: Any, clock: Clock, default_runtime_s: float = DEFAULT_RUNTIME_S):
        self.state, self.clock, self.default_runtime_s = state, clock, default_runtime_s

    def many(self, machines: Any, request: TaskRequest) -> list[float]:
        """The wait of ``request`` on each of ``machines`` (behind everything queued there): those it
        fits now with nothing queued are answered together, the others one by one."""
        fits = fitting_now(self.state, machines, request)
        return [0.0 if fit else self(m, request) for m, fit in zip(machines, fits)]

    def __call__(self, machine: str, request: TaskRequest, until: str | None = None) -> float:
        """The wait of ``request`` on ``machine``, behind every task queued there (or only those
        queued before task ``until``, to re-estimate a queued copy where it stands)."""
        state, now = self.state, self.clock.now()
        view = state.view
        at = view.index.get(machine)
        if at is None:
            return math.inf
        if fits_now(state, at, machine, request):
            return 0.0
        free = view.free[at].copy()
        ends: list[tuple[float, int, np.ndarray]] = []  # (when, tie, what it frees)
        for i, name in enumerate(sorted(view.tasks[at])):
            task = state.tasks.get(name)
            if task is None or task.state is not TaskState.RUNNING or task.request is None:
                continue
            runtime = runtime_of(state.jobs[task.job], self.default_runtime_s)
            start = started_at(task)
            end = now + runtime if start is None else start + runtime
            if end <= now:
                end = now + LATE_FRACTION * runtime
            ends.append((end, i, task.request.vector))
        heapq.heapify(ends)
        tie = len(ends)
        t = now
        for copy in state.machine_queues.on(machine):
            if copy.task == until:
                break
            queued = state.tasks[copy.task]
            job = state.jobs[queued.job]
            t = _start_when(free, job.request.vector, ends, t)
            if math.isinf(t):
                return math.inf
            free -= job.request.vector
            tie += 1
            heapq.heappush(ends, (t + runtime_of(job, self.default_runtime_s), tie, job.request.vector))
        return _start_when(free, request.vector, ends, t) - now


def fits_now(state: Any, at: int, machine: str, request: TaskRequest) -> bool:
    """Does ``request`` fit the free room of the view's machine ``at`` now, with nothing queued there
    (which would start first)?"""
    return not state.machine_queues.length(machine) and bool((state.view.free[at] >= request.vector).all())


def fitting_now(state: Any, machines: Any, request: TaskRequest) -> list[bool]:
    """:func:`fits_now` of each of ``machines`` at once (False for one the view does not hold)."""
    view, queues = state.view, state.machine_queues
    at = [view.index.get(m, -1) for m in machines]
    held = [i for i in at if i >= 0]
    fits = iter((view.free[held] >= request.vector).all(axis=1).tolist() if held else ())
    return [i >= 0 and next(fits) and not queues.length(m) for m, i in zip(machines, at)]


def _start_when(free: np.ndarray, need: np.ndarray, ends: list, t: float) -> float:
    """The first time from ``t`` at which ``need`` fits ``free`` as ``ends`` pass (``free`` and
    ``ends`` are consumed as they are used); inf when even all of them are not enough."""
    while (free < need).any():
        if not ends:
            return math.inf
        when, _, vector = heapq.heappop(ends)
        free += vector
        t = max(t, when)
    return t
