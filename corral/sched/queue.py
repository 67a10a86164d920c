"""Queue order: priority bands high to low; inside a band, users take turns.

Inside a band each user has a queue (their tasks by priority, then
submission). Users are served in turns of up to ``quantum`` tasks, so one
user's large job never blocks the others, while a turn still hands the
scheduler runs of identical tasks (one equivalence class) to place together.
Which user goes next, and for how many tasks, is a :class:`UserOrder`, chosen
by name (:func:`make_user_order`): ``drf`` (Dominant Resource Fairness,
weighted and hierarchical, ``drf.py``; the default) or ``round-robin``.

The runs are yielded lazily and the scheduler places each before asking for
the next, so an order that reads the cell view (DRF) sees the placements made
so far in the pass.
"""

from __future__ import annotations

from collections import defaultdict
from operator import attrgetter
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

from corral.model.priority import BANDS_HIGH_TO_LOW, band_of
from corral.sched.request import PendingTask

if TYPE_CHECKING:
    from corral.sched.cellview import CellView
    from corral.sched.shares import ShareConfig


class Band:
    """One priority band: each user's queue of tasks and how far it has been served."""

    __slots__ = ("users", "queues", "position")

    def __init__(self, queues: dict[str, list[PendingTask]]):
        self.users = sorted(queues)
        self.queues = queues
        self.position = dict.fromkeys(queues, 0)

    def left(self, user: str) -> int:
        return len(self.queues[user]) - self.position[user]


class UserOrder(Protocol):
    name: str

    def turns(self, band: Band, view: "CellView | None", quantum: int) -> Iterator[tuple[str, int]]:
        """Yield turns ``(user, n)`` (n >= 1) while a user of ``band`` has tasks left: the caller
        serves the user's next n tasks (fewer if it has fewer), placing them on ``view``, before
        it asks for the next turn. Never yields a user with no task left."""


class RoundRobin:
    """Users in name order, a turn of ``quantum`` tasks each."""

    name = "round-robin"

    def turns(self, band: Band, view: "CellView | None", quantum: int) -> Iterator[tuple[str, int]]:
        users = band.users
        while users:
            for user in users:
                if band.left(user):
                    yield user, quantum
            users = [u for u in users if band.left(u)]


USER_ORDERS = ("drf", "round-robin")
DEFAULT_USER_ORDER = "drf"


def make_user_order(name: str = DEFAULT_USER_ORDER, shares: "ShareConfig | None" = None,
                    slack: float = 0.0) -> UserOrder:
    """The queue order called ``name`` (one of :data:`USER_ORDERS`); raises ValueError naming them.
    ``shares``, ``slack``: DRF's weights and groups, and how far (a share of the cell) one turn may
    take a user past the next user's share."""
    if name == "round-robin":
        return RoundRobin()
    if name == "drf":
        from corral.sched.drf import DominantResourceFairness

        return DominantResourceFairness(shares, slack)
    raise ValueError(f"unknown queue order {name!r}; expected one of {', '.join(USER_ORDERS)}")


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
    pending: Sequence[PendingTask], quantum: int = 16, user_order: UserOrder | None = None,
    view: "CellView | None" = None,
) -> Iterator[list[PendingTask]]:
    """Yield runs of pending tasks in scheduling order; each run shares one request (class).

    ``view``: the cell the runs are placed on (an order that reads shares needs it)."""
    user_order = user_order or RoundRobin()
    by_band: dict = defaultdict(lambda: defaultdict(list))
    for task in pending:
        by_band[band_of(task.request.priority)][task.user].append(task)
    for name in BANDS_HIGH_TO_LOW:
        users = by_band.get(name)
        if not users:
            continue
        band = Band({user: _user_queue(tasks) for user, tasks in users.items()})
        for user, count in user_order.turns(band, view, quantum):
            start = band.position[user]
            turn = band.queues[user][start : start + max(1, count)]
            band.position[user] = start + len(turn)
            yield from _runs(turn)
