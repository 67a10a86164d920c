"""Queue order: priority bands high to low; inside a band, users take turns.

Inside a band each user has a queue (their tasks by priority, then
submission). Users are served in turns of up to ``quantum`` tasks, so one
user's large job never blocks the others, while a turn still hands the
scheduler runs of identical tasks (one equivalence class) to place together.
Which user goes next is a :class:`UserOrder`: round-robin here; Dominant
Resource Fairness plugs in at the same seam.
"""

from __future__ import annotations

from collections import defaultdict
from operator import attrgetter
from typing import Iterator, Protocol, Sequence

from corral.model.priority import BANDS_HIGH_TO_LOW, band_of
from corral.sched.request import PendingTask


class UserOrder(Protocol):
    def order(self, users: list[str]) -> Iterator[str]:
        """Yield users to serve, one turn each, while any still has tasks (the caller skips empty ones)."""


class RoundRobin:
    def order(self, users: list[str]) -> Iterator[str]:
        while True:
            yield from users


def _runs(turn: list[PendingTask]) -> Iterator[list[PendingTask]]:
    """Split a turn into runs of one request (jobs share a request object: test identity first)."""
    run, request = [turn[0]], turn[0].request
    for task in turn[1:]:
        if task.request is request or task.request == request:
            run.append(task)
        else:
            yield run
            run, request = [task], task.request
    yield run


def _user_queue(tasks: list[PendingTask]) -> list[PendingTask]:
    """A user's tasks by priority, then submission, job and index (sorting jobs, not tasks)."""
    jobs: dict[str, list[PendingTask]] = defaultdict(list)
    for task in tasks:
        jobs[task.job].append(task)
    order = sorted(jobs.values(), key=lambda job: (-job[0].request.priority, job[0].submitted, job[0].job))
    out: list[PendingTask] = []
    for job in order:
        if len({t.request.priority for t in job}) > 1:  # a job whose tasks differ in priority
            job = sorted(job, key=lambda t: (-t.request.priority, t.index))
        else:
            job = sorted(job, key=attrgetter("index"))
        out.extend(job)
    return out


def queue_order(
    pending: Sequence[PendingTask], quantum: int = 16, user_order: UserOrder | None = None
) -> Iterator[list[PendingTask]]:
    """Yield runs of pending tasks in scheduling order; each run shares one request (class)."""
    user_order = user_order or RoundRobin()
    by_band: dict = defaultdict(lambda: defaultdict(list))
    for task in pending:
        by_band[band_of(task.request.priority)][task.user].append(task)
    for band in BANDS_HIGH_TO_LOW:
        users = by_band.get(band)
        if not users:
            continue
        queues = {user: _user_queue(tasks) for user, tasks in users.items()}
        position = dict.fromkeys(queues, 0)
        remaining = sum(len(q) for q in queues.values())
        for user in user_order.order(sorted(queues)):
            if remaining == 0:
                break
            start = position[user]
            turn = queues[user][start : start + quantum]
            if not turn:
                continue
            position[user] = start + len(turn)
            remaining -= len(turn)
            yield from _runs(turn)
