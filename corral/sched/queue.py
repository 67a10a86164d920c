"""Queue order: priority bands high to low; inside a band, users take turns.

Inside a band each user has a queue (their tasks by priority, then
submission). Users are served in turns of up to ``quantum`` tasks, so one
user's large job never blocks the others, while a turn still hands the
scheduler runs of identical tasks (one equivalence class) to place together.
Which user goes next is a :class:`UserOrder`: round-robin here; Dominant
Resource Fairness plugs in at the same seam.
"""

from __future__ import annotations

from collections import defaultdict, deque
from itertools import groupby
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
        queues = {
            user: deque(sorted(tasks, key=lambda t: (-t.request.priority, t.submitted, t.job, t.index)))
            for user, tasks in users.items()
        }
        remaining = sum(len(q) for q in queues.values())
        for user in user_order.order(sorted(queues)):
            if remaining == 0:
                break
            queue = queues[user]
            turn = [queue.popleft() for _ in range(min(quantum, len(queue)))]
            remaining -= len(turn)
            for _, run in groupby(turn, key=lambda t: t.request):
                yield list(run)
