"""What a replay measures, read off the master's own event stream and cell view.

Every event the core emits names a task, a job or a machine; the collector
reconciles the tasks it names against the state (pending, running, dead),
so it needs no knowledge of each transition. From that it keeps the
pending delay of every placement, preemptions, per-user allocation
(time-averaged dominant share, as DRF measures it) and, at sample times,
allocation and usage of the cell per resource.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

import numpy as np

from corral.master.events import AllocSetKilled, AllocSetSubmitted, Event, JobFailed, JobKilled, JobSubmitted, JobUpdated, MachineLost, TaskEnded, TaskScheduled
from corral.master.state import CellState
from corral.model.job import TaskState
from corral.model.resources import CPU, GPU, MEMORY

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
SAMPLE_COLUMNS = ("t", "alloc_cpu", "alloc_memory", "alloc_gpu", "usage_cpu", "usage_memory", "running", "pending")

_JOB_EVENTS = (JobSubmitted, JobUpdated, JobKilled, JobFailed, AllocSetSubmitted, AllocSetKilled)


class Metrics:
    def __init__(self, state: CellState, capacity: np.ndarray):
        self.state = state
        self.capacity = capacity.astype(float)  # the cell's total, per dimension
        self._inverse = np.divide(1.0, self.capacity, out=np.zeros_like(self.capacity), where=self.capacity > 0)
        self.pending_since: dict[str, float] = {}
        self.running: dict[str, tuple[str, np.ndarray, str]] = {}  # task -> (user, request vector, machine)
        self.running_on: dict[str, set[str]] = defaultdict(set)
        self.delays: list[float] = []
        self.user_delays: dict[str, list[float]] = defaultdict(list)  # the same delays, by the task's user
        self.ended = Counter()  # transitions out of running or pending, by how (evict, lost, finish, kill, ...)
        self.never_ran = 0  # tasks that died (killed, rejected, departed) while still pending
        self.placements = 0
        self.unplaced_attempts = 0  # a pending task the scheduler tried and could not place, once per round
        self.user_alloc: dict[str, np.ndarray] = {}
        self.user_since: dict[str, float] = {}
        self.user_area: dict[str, float] = defaultdict(float)  # integral of dominant share over time
        self.user_peak: dict[str, float] = defaultdict(float)
        self.samples: list[tuple[float, ...]] = []

    # ---- the event stream ------------------------------------------------------------------------

    def observe(self, events: Iterable[Event]) -> None:
        state = self.state
        for event in events:
            t = event.t
            kind = type(event)
            if kind is TaskScheduled or kind is TaskEnded:
                names: Iterable[str] = (event.task,)
            elif kind in _JOB_EVENTS:
                names = state.job_tasks.get(event.job, ())
            elif kind is MachineLost:
                names = list(self.running_on.get(event.machine, ()))
            else:
                continue
            for name in names:
                self._reconcile(name, t)

    def _reconcile(self, name: str, t: float) -> None:
        task = self.state.tasks[name]
        now = task.state
        held = self.running.get(name)
        if now is R:
            if held is not None:
                return
            since = self.pending_since.pop(name, None)
            job = self.state.jobs[task.job]
            if since is not None:
                self.delays.append(t - since)
                self.user_delays[job.user].append(t - since)
            self._add(name, job.user, task.request.vector, task.machine, t)
            self.placements += 1
            return
        if held is not None:
            self._remove(name, held, t)
            self.ended[task.history[-1].via] += 1
        if now is P:
            self.pending_since.setdefault(name, t)
        elif name in self.pending_since:
            del self.pending_since[name]
            if held is None:
                self.never_ran += 1
                self.ended[task.history[-1].via] += 1

    def _add(self, name: str, user: str, vector: np.ndarray, machine: str, t: float) -> None:
        self.running[name] = (user, vector, machine)
        self.running_on[machine].add(name)
        self._user_changed(user, vector, t)

    def _remove(self, name: str, held: tuple[str, np.ndarray, str], t: float) -> None:
        user, vector, machine = held
        del self.running[name]
        self.running_on[machine].discard(name)
        self._user_changed(user, -vector, t)

    def _user_changed(self, user: str, delta: np.ndarray, t: float) -> None:
        alloc = self.user_alloc.get(user)
        if alloc is None:
            alloc = self.user_alloc[user] = np.zeros(len(self.capacity))
            self.user_since[user] = t
        share = float((alloc * self._inverse).max())
        self.user_area[user] += share * (t - self.user_since[user])
        self.user_since[user] = t
        alloc += delta
        share = float((alloc * self._inverse).max())
        if share > self.user_peak[user]:
            self.user_peak[user] = share

    def user_shares(self) -> dict[str, float]:
        """Each user's dominant share of the cell now (running tasks at their requests)."""
        inv = self._inverse
        return {user: float((alloc * inv).max()) for user, alloc in self.user_alloc.items()}

    # ---- samples -----------------------------------------------------------------------------------

    def sample(self, t: float, free: np.ndarray, usage: np.ndarray) -> None:
        """Record allocation (from the view's free resources) and usage (from the agents) at ``t``."""
        used = self.capacity - free.sum(axis=0)
        alloc = used * self._inverse
        self.samples.append((t, float(alloc[CPU]), float(alloc[MEMORY]), float(alloc[GPU]),
                             float(usage[0] * self._inverse[CPU]), float(usage[1] * self._inverse[MEMORY]),
                             float(len(self.running)), float(len(self.pending_since))))

    # ---- results -----------------------------------------------------------------------------------

    def summary(self, end: float, start: float = 0.0) -> dict[str, Any]:
        span = max(end - start, 1e-9)
        for user in list(self.user_alloc):
            self._user_changed(user, np.zeros(len(self.capacity)), end)
        delays = np.array(self.delays) if self.delays else np.zeros(1)
        table = np.array(self.samples) if self.samples else np.zeros((1, len(SAMPLE_COLUMNS)))
        over_time = {}
        for col, key in ((1, "cpu"), (2, "memory"), (3, "gpu")):
            over_time[key] = {"mean": _r(table[:, col].mean()), "peak": _r(table[:, col].max())}
        usage = {}
        for col, key in ((4, "cpu"), (5, "memory")):
            usage[key] = {"mean": _r(table[:, col].mean()), "peak": _r(table[:, col].max())}
        return {
            "placements": self.placements,
            "pending_delay_s": {"count": len(self.delays), "mean": _r(delays.mean()),
                                **{f"p{q}": _r(np.percentile(delays, q)) for q in (50, 90, 99)},
                                "max": _r(delays.max())},
            "allocation": over_time,
            "usage": usage,
            "preemptions": self.ended.get("evict", 0),
            "lost": self.ended.get("lost", 0),
            "ended": dict(sorted(self.ended.items())),
            "never_ran": self.never_ran,
            "pending_at_end": len(self.pending_since),
            "unplaced_attempts": self.unplaced_attempts,
            "per_user_share": {u: {"mean": _r(self.user_area[u] / span), "peak": _r(self.user_peak[u])}
                               for u in sorted(self.user_alloc)},
        }


def _r(x: float) -> float:
    return round(float(x), 6)
