"""Reservations and last usage of running tasks, from agents' usage reports (soft state, no events).

The master core's own book (``MasterCore.reservations``), sans-IO; the service's usage history
for charts is another thing (``usage.py``).

Each poll's :class:`~corral.master.commands.UsageReport` gives what the tasks on a
machine use; a task running there in the reported generation gets a reservation
(``reservations.py``: from its limit towards its usage peak plus a margin) and its
last usage is kept. A task placed again (another generation or machine) starts at
its limit again; a task no longer running is forgotten. Nothing here is logged: after
a restart every reservation starts at its limit again, which never over-commits.

Per machine, :meth:`ReservationBook.machine` gives what the master counts there: ``limit``
(what its running tasks asked for), ``reservation`` (tasks with no usage report yet at
their limit) and ``usage`` (cpu and memory).

Reclamation: :meth:`ReservationBook.sync` hands the reservations that changed to the cell
view (the core does it when it snapshots a round), where the scheduler places non-production
work against them; after each report, ``reclamation.reclaim`` evicts reclaimed tasks the
machine's memory no longer holds and sets the reclaimed tasks' CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corral.master.commands import UsageReport
from corral.master.errors import AdmissionError
from corral.master.reclamation import reclaim
from corral.master.reservations import ReservationPolicy, Reservations
from corral.master.step import Step
from corral.model.job import TaskState
from corral.model.resources import CPU, MEMORY


def usage_of_statuses(tasks: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """A poll's task statuses as a UsageReport's ``usage``: task -> (generation, cpu_milli,
    memory_bytes), for the statuses that carry a usage."""
    out = {}
    for t in tasks:
        u = t.get("usage")
        if isinstance(u, dict) and isinstance(t.get("generation"), int) and isinstance(t.get("task_id"), str):
            out[t["task_id"]] = (t["generation"], int(u.get("cpu_milli") or 0), int(u.get("memory_bytes") or 0))
    return out


class ReservationBook:
    def __init__(self, clock: Any, policy: ReservationPolicy | None = None):
        self.clock = clock
        self.estimator = Reservations(policy)
        self.usage: dict[str, np.ndarray] = {}
        self._placed: dict[str, tuple[str, int]] = {}  # task -> (machine, generation) it was booked at
        self._on: dict[str, set[str]] = {}  # machine -> the tasks booked there (a report looks at its own)
        self._changed: set[str] = set()  # tasks whose reservation the cell view has not been given yet
        self._lineage: object = None  # the view last given them (a rebuilt view is given every one)
        self.throttled: dict[str, dict[str, int]] = {}  # machine -> the reclaimed tasks' CPU last sent

    def report(self, step: Step, cmd: UsageReport) -> None:
        state = step.state
        if cmd.machine not in state.machines:
            raise AdmissionError(404, [("machine", f"no machine {cmd.machine}; register it first")], "not_found")
        now = self.clock.now()
        counted = 0
        rose: set[str] = set()  # tasks whose memory reservation rose in this report
        for name, (generation, cpu, memory) in cmd.usage.items():
            task = state.tasks.get(name)
            if (task is None or task.state is not TaskState.RUNNING or task.machine != cmd.machine
                    or task.generation != generation or task.request is None):
                continue
            if self._placed.get(name) != (cmd.machine, generation):
                limit = task.request.vector[[CPU, MEMORY]]
                self.forget(name)  # booked elsewhere or at another generation before
                self.estimator.start(name, limit, now)
                self._placed[name] = (cmd.machine, generation)
                self._on.setdefault(cmd.machine, set()).add(name)
            used = np.array([max(0, int(cpu)), max(0, int(memory))], dtype=np.int64)
            before = self.estimator.of(name)
            after = self.estimator.observe(name, used, now)
            if after[1] > before[1]:
                rose.add(name)
            if not np.array_equal(after, before):
                self._changed.add(name)
            self.usage[name] = used
            counted += 1
        # Forget tasks booked here that no longer run here.
        for name in list(self._on.get(cmd.machine, ())):
            task = state.tasks.get(name)
            if task is None or task.state is not TaskState.RUNNING or (task.machine, task.generation) != self._placed[name]:
                self.forget(name)
        step.reply = {"machine": cmd.machine, "tasks": counted}
        reclaim(step, self, cmd.machine, rose)

    @property
    def changed(self) -> bool:
        """Has a reservation changed that the cell view was not given yet (a round may place more)?"""
        return bool(self._changed)

    def sync(self, state: Any) -> int:
        """Give the state's cell view the reservations that changed since the last call (all of them
        to a view it has not seen); returns how many it was given."""
        view = state.view
        names = self._placed if view.lineage is not self._lineage else self._changed
        given = 0
        for name in list(names):
            task = state.tasks.get(name)
            if task is None or task.state is not TaskState.RUNNING or self._placed.get(name) != (task.machine, task.generation):
                continue
            full = task.request.vector.copy()
            full[[CPU, MEMORY]] = self.estimator.of(name)
            given += view.set_reservation(name, full)
        self._lineage = view.lineage
        self._changed.clear()
        return given

    def forget(self, name: str) -> None:
        self.estimator.stop(name)
        self._changed.discard(name)
        self.usage.pop(name, None)
        placed = self._placed.pop(name, None)
        if placed is not None:
            booked = self._on.get(placed[0])
            if booked is not None:
                booked.discard(name)
                if not booked:
                    del self._on[placed[0]]

    def reservation_of(self, task: Any) -> np.ndarray:
        """The task's reservation (cpu, memory): its limit until a usage report of this placement."""
        if self._placed.get(task.name) == (task.machine, task.generation):
            return self.estimator.of(task.name)
        return task.request.vector[[CPU, MEMORY]].copy()

    def machine(self, state: Any, name: str, tasks: list[str]) -> dict[str, dict[str, int]]:
        """``limit``, ``reservation`` and ``usage`` (cpu, memory) of the running ``tasks`` on ``name``."""
        limit = np.zeros(2, dtype=np.int64)
        reserved = np.zeros(2, dtype=np.int64)
        used = np.zeros(2, dtype=np.int64)
        for task_name in tasks:
            task = state.tasks.get(task_name)
            if task is None or task.state is not TaskState.RUNNING or task.machine != name or task.request is None:
                continue
            limit += task.request.vector[[CPU, MEMORY]]
            reserved += self.reservation_of(task)
            if self._placed.get(task_name) == (name, task.generation):
                used += self.usage.get(task_name, 0)
        return {key: {"cpu": int(v[0]), "memory": int(v[1])}
                for key, v in (("limit", limit), ("reservation", reserved), ("usage", used))}
