"""The machine queues' expected wait from corral.sched.estimates' wait-time matrix (Apollo §3.2).

:class:`MatrixWait` is the :class:`~corral.master.queue_wait.ExpectedWait` the
core uses by default. Per machine it builds a
:class:`~corral.sched.estimates.wait_matrix.MachineLoad` from the cell state:

* ``running``: each running task's limits (cpu, memory) and its estimated time
  left (corral.master.estimates: its job's or class's runtime estimate less what
  it has run; late: a tenth of the estimate more);
* ``queued``: the copies queued there, in order, each holding its job's
  estimated runtime once started;

and answers with :meth:`WaitTimeMatrix.expected_wait_s` (the shape's bucket:
never optimistic), except that a request that fits the machine's free room now
with nothing queued there waits 0 (its bucket could round it past what is
free). An occupant nothing is known of is given RuntimeWait's rule (its spec's
``expected_runtime``, else 60 s). Where no occupant of the machine
has an estimate at all, or the request asks for disk or GPUs (the matrix is cpu
× memory), it answers what the fallback (:class:`RuntimeWait`) answers, so a
cell without estimates queues exactly as before. Pure reads of the state.

A scheduling round asks the same machines again and again (the completion-time
scorer, for each task and candidate; the machine queues, for each task they
place): each machine's matrix is kept while what it is built from stays the
same (the time, the estimates' version, the machine's running tasks, free room
and queue), so it is built once per change of that machine and never answers
from stale figures.
"""

from __future__ import annotations

import math
from typing import Any

from corral.master.clock import Clock
from corral.master.queue_wait import (DEFAULT_RUNTIME_S, LATE_FRACTION, RuntimeWait, fits_now, fitting_now,
                                     runtime_of, started_at)
from corral.model.job import TaskState
from corral.model.resources import CPU, DISK, GPU, MEMORY
from corral.sched.estimates.wait_matrix import MachineLoad, Occupant, WaitTimeMatrix
from corral.sched.request import TaskRequest


class MatrixWait:
    def __init__(self, state: Any, clock: Clock, default_runtime_s: float = DEFAULT_RUNTIME_S):
        self.state, self.clock, self.default_runtime_s = state, clock, default_runtime_s
        self.fallback = RuntimeWait(state, clock, default_runtime_s)
        self._at: tuple[float, int] | None = None  # (now, estimates' version) the kept matrices are for
        # (machine, until) -> (state.seq, what it was built from, its matrix and whether any occupant had
        # an estimate)
        self._kept: dict[tuple[str, str | None], tuple[int, tuple, tuple[WaitTimeMatrix, bool] | None]] = {}
        self._occupants: dict[str, tuple[tuple, tuple[list, bool]]] = {}  # machine -> (basis, their ends)

    def load(self, machine: str, until: str | None = None) -> tuple[MachineLoad, bool] | None:
        """The machine's load (behind the copies queued before task ``until``, if given) and whether
        any occupant's time came from an estimate; None for a machine the view does not hold."""
        state = self.state
        view = state.view
        at = view.index.get(machine)
        if at is None:
            return None
        running, known = self._running(machine, at)
        estimates = state.estimates
        queued = []
        for copy in state.machine_queues.on(machine):
            if copy.task == until:
                break
            job = state.jobs[state.tasks[copy.task].job]
            estimate = estimates.runtime(job.id, job.request)
            known = known or estimate.known
            seconds = estimate.mean_s if estimate.known else runtime_of(job, self.default_runtime_s)
            queued.append(Occupant(int(job.request.vector[CPU]), int(job.request.vector[MEMORY]), seconds))
        capacity, free = view.capacity[at], view.free[at]
        load = MachineLoad(int(capacity[CPU]), int(capacity[MEMORY]), int(free[CPU]), int(free[MEMORY]),
                           running, tuple(queued))
        return load, known

    def _running(self, machine: str, at: int) -> tuple[tuple[Occupant, ...], bool]:
        """The running occupants of the machine at view row ``at`` with their estimated time left,
        and whether any came from an estimate. When each is expected to end is kept while the
        estimates' version and the machine's tasks stay the same (every queued copy's wait there,
        at every tick, reads the same ones); the time left is that less now."""
        state, now = self.state, self.clock.now()
        tasks = frozenset(state.view.tasks[at])
        basis = (state.estimates.version, tasks)
        kept = self._occupants.get(machine)
        if kept is None or kept[0] != basis:
            kept = self._occupants[machine] = (basis, self._ends(tasks))
        ends, known = kept[1]
        running = tuple(Occupant(cpu, memory, (end - now if end > now else late_s) if end is not None else late_s)
                        for cpu, memory, end, late_s in ends)
        return running, known

    def _ends(self, tasks: frozenset[str]) -> tuple[list[tuple[int, int, float | None, float]], bool]:
        """(cpu, memory, expected end or None, seconds once late or when no end is known) of each
        running task of ``tasks``, and whether any end came from an estimate."""
        state = self.state
        estimates, known = state.estimates, False
        ends = []
        for name in sorted(tasks):
            task = state.tasks.get(name)
            if task is None or task.state is not TaskState.RUNNING or task.request is None:
                continue
            found = estimates.expected_end(state, name)
            if found is None:  # RuntimeWait's rule: its spec's runtime from its start, else all of it
                runtime = runtime_of(state.jobs[task.job], self.default_runtime_s)
                start = started_at(task)
                end, late_s = (None, runtime) if start is None else (start + runtime, LATE_FRACTION * runtime)
            else:
                (end, late_s), known = found, True
            vector = task.request.vector
            ends.append((int(vector[CPU]), int(vector[MEMORY]), end, late_s))
        return ends, known

    def matrix(self, machines: list[str]) -> WaitTimeMatrix:
        """The wait-time matrix of ``machines`` (those the view holds), for the API and the CLI."""
        loads = {}
        for machine in machines:
            found = self.load(machine)
            if found is not None:
                loads[machine] = found[0]
        return WaitTimeMatrix(loads)

    def many(self, machines: Any, request: TaskRequest) -> list[float]:
        """The wait of ``request`` on each of ``machines`` (behind everything queued there): those it
        fits now with nothing queued are answered together, the others one by one."""
        fits = fitting_now(self.state, machines, request)
        return [0.0 if fit else self(m, request) for m, fit in zip(machines, fits)]

    def __call__(self, machine: str, request: TaskRequest, until: str | None = None) -> float:
        vector = request.vector
        if vector[DISK] > 0 or vector[GPU] > 0:
            return self.fallback(machine, request, until=until)
        at = self.state.view.index.get(machine)
        if at is not None and fits_now(self.state, at, machine, request):
            return 0.0  # it fits as the machine stands, nothing queued ahead: no bucket rounds that up
        found = self._matrix_of(machine, until)
        if found is None:
            return math.inf
        matrix, known = found
        if not known:
            return self.fallback(machine, request, until=until)
        return matrix.expected_wait_s(machine, vector[CPU] / 1000.0, int(vector[MEMORY]))

    def _matrix_of(self, machine: str, until: str | None) -> tuple[WaitTimeMatrix, bool] | None:
        state = self.state
        at = (self.clock.now(), state.estimates.version)
        if at != self._at:
            self._at, self._kept = at, {}
        key = (machine, until)
        kept = self._kept.get(key)
        if kept is not None and kept[0] == state.seq:
            return kept[2]  # nothing at all applied since: as built
        view = state.view
        index = view.index.get(machine)
        basis = () if index is None else (frozenset(view.tasks[index]), view.free[index].tobytes(),
                                          tuple(c.task for c in state.machine_queues.on(machine)))
        if kept is not None and kept[1] == basis:
            self._kept[key] = (state.seq, basis, kept[2])
            return kept[2]
        found = self.load(machine, until)
        built = None if found is None else (WaitTimeMatrix({machine: found[0]}), found[1])
        self._kept[key] = (state.seq, basis, built)
        return built
