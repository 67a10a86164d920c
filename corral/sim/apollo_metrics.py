"""The figures of ``corral sim apollo``, gathered from one replay as it runs. Pure: events and times in.

:class:`ApolloFigures` reads every event the master emits (the replay hands them
over as they apply) and keeps only what the figures need, so a replay of
100,000 tasks keeps no event log:

* **corrections**: a straggler's speculative copy (``copy_scheduled``) and a
  queued task's second copy on another machine (Apollo's duplicate scheduling,
  a second ``task_queued`` of a pending task) are corrections triggered; one
  succeeded when the copy produced the result: the speculative copy won
  (``copy_ended`` via ``won``), or the task started from the second queue;
* **runtime estimate error**: at each start (``task_scheduled``) the master's own
  runtime estimate of the task (corral.master.estimates, the figure its
  completion-time scorer reads) against the run's length when it finishes;
* **wait estimate error**: the expected wait a task was queued with against the
  wait it had until it started from that queue.

An error is ``100 × |estimate − actual| / actual`` with the actual at least one
second (a wait of 0 s would make any estimate infinitely wrong).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from corral.master import events as ev

FLOOR_S = 1.0  # the least actual time an error is measured against


def percentile(values: Iterable[float], q: float) -> float | None:
    data = list(values)
    return round(float(np.percentile(data, q)), 3) if data else None


def error_pct(estimate: float, actual: float) -> float:
    return 100.0 * abs(estimate - actual) / max(actual, FLOOR_S)


def median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 2) if values else None


class ApolloFigures:
    def __init__(self, state: Any):
        self.state = state  # the master's cell state (read for the runtime estimate at a start)
        self.triggered = 0
        self.succeeded = 0
        self.speculative = 0  # copies of stragglers
        self.moves = 0  # queued tasks' second copies
        self.queued: dict[str, dict[str, tuple[float, float]]] = {}  # task -> machine -> (since, expected wait)
        self.moved_to: dict[str, set[str]] = {}  # task -> the machines of its second copies
        self.estimate_at_start: dict[str, float] = {}  # running task -> its runtime estimate at its start
        self.started_at: dict[str, float] = {}
        self.runtime_errors: list[float] = []
        self.wait_errors: list[float] = []

    def observe(self, events: Iterable[ev.Event]) -> None:
        for event in events:
            kind = type(event)
            if kind is ev.TaskScheduled:
                self._started(event)
            elif kind is ev.TaskEnded:
                self._ended(event)
            elif kind is ev.TaskQueued:
                copies = self.queued.setdefault(event.task, {})
                if copies:  # already waiting elsewhere: a correction
                    self.triggered += 1
                    self.moves += 1
                    self.moved_to.setdefault(event.task, set()).add(event.machine)
                copies[event.machine] = (event.t, event.expected_wait_s)
            elif kind is ev.TaskDequeued:
                self.queued.get(event.task, {}).pop(event.machine, None)
            elif kind is ev.CopyScheduled:
                self.triggered += 1
                self.speculative += 1
            elif kind is ev.CopyEnded and event.via == "won":
                self.succeeded += 1

    def _started(self, event: ev.TaskScheduled) -> None:
        copies = self.queued.pop(event.task, None)
        if copies and event.machine in copies:  # started from that machine's queue
            since, expected = copies[event.machine]
            self.wait_errors.append(error_pct(expected, event.t - since))
        if event.machine in self.moved_to.pop(event.task, ()):
            self.succeeded += 1  # the second copy started first
        task = self.state.tasks.get(event.task)
        if task is None:
            return
        estimate = self.state.estimates.runtime(task.job, task.request)
        if estimate.known:
            self.estimate_at_start[event.task] = estimate.mean_s
        self.started_at[event.task] = event.t

    def _ended(self, event: ev.TaskEnded) -> None:
        start = self.started_at.pop(event.task, None)
        estimate = self.estimate_at_start.pop(event.task, None)
        if event.via == "finish" and start is not None and estimate is not None:
            self.runtime_errors.append(error_pct(estimate, event.t - start))

    def figures(self) -> dict[str, Any]:
        return {
            "corrections_triggered": self.triggered,
            "corrections_succeeded": self.succeeded,
            "correction_success_rate": round(self.succeeded / self.triggered, 4) if self.triggered else None,
            "speculative_copies": self.speculative,
            "queue_duplicates": self.moves,
            "runtime_estimate_error_pct": median(self.runtime_errors),
            "runtime_estimates": len(self.runtime_errors),
            "wait_estimate_error_pct": median(self.wait_errors),
            "wait_estimates": len(self.wait_errors),
        }


def job_completions(state: Any, arrivals: dict[str, float]) -> list[float]:
    """Seconds from arrival to end of every job that succeeded (``arrivals``: job id -> arrival)."""
    out = []
    for jid, arrival in arrivals.items():
        job = state.jobs.get(jid)
        if job is not None and job.state.value == "succeeded":
            out.append(job.history[-1].t - arrival)
    return out
