"""Dominant Resource Fairness (Ghodsi et al., NSDI 2011), weighted and hierarchical, as a queue order.

Inside a priority band the next task comes from the group with the lowest
weighted dominant share, and inside it from the user with the lowest weighted
dominant share (a user in no group is a group of one; see ``shares.py``). A
share counts everything the user's tasks hold on the view: running tasks and
the tasks placed so far in this pass, read from the view's per-user usage
(``CellView.user_used``, kept as tasks are placed), never by scanning tasks.

Serving one task at a time would give exactly progressive filling but would
split every run of identical tasks into runs of one. A turn is instead as long
as serving one task at a time would keep choosing the same user: the tasks
after which it is still the lowest of its group, and its group still the
lowest of the band (ties to the lower name, as the heaps break them), with the
first task that makes it lose its place included, at most ``quantum``. If some
of a turn's tasks do not fit, the user's share is lower than planned and the
next turn serves it again: the same choices as task by task.

Shares only grow during a pass, except when preemption removes a task; the
heaps are rebuilt then (the view counts removals).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Iterator

import numpy as np

from corral.sched.queue import Band
from corral.sched.shares import ShareConfig, inverse

if TYPE_CHECKING:
    from corral.sched.cellview import CellView

_INF = float("inf")


def _first_crossing(share: list[float], step: list[float], rival: float, win_ties: bool) -> float:
    """How many more tasks of ``step`` (per-resource fraction each, weighted) until ``share`` is no
    longer below ``rival``: the first n >= 1 at which some resource's share passes it."""
    best = _INF
    for s, f in zip(share, step):
        if f > 0:
            room = (rival - s) / f
            whole = round(room)
            if abs(room - whole) < 1e-9:  # a tie in exact arithmetic stays a tie
                room = whole
            n = (int(room // 1) + 1) if win_ties else -int(-room // 1)  # first n with s+nf > / >= rival
            if n < best:
                best = n
    return max(1, best) if best != _INF else _INF


def _second(heap: list) -> tuple[float, object] | None:
    """The runner-up of a heap: the smaller of the root's children."""
    if len(heap) < 2:
        return None
    return heap[1] if len(heap) < 3 or heap[1] < heap[2] else heap[2]


class DominantResourceFairness:
    name = "drf"

    def __init__(self, shares: ShareConfig | None = None, slack: float = 0.0):
        if not slack >= 0:
            raise ValueError(f"slack: expected a share >= 0, got {slack!r}")
        self.shares = shares or ShareConfig()
        self.slack = slack

    def turns(self, band: Band, view: "CellView | None", quantum: int) -> Iterator[tuple[str, int]]:
        if view is None:
            raise ValueError("Dominant Resource Fairness reads the cell view: pass view= to queue_order")
        config = self.shares
        inv = inverse(view.total_capacity)
        inv_list = inv.tolist()
        removals = None
        while True:
            if view.removals != removals:
                removals = view.removals
                groups, group_heap, group_usage = self._build(band, view, inv)
            if not group_heap:
                return
            _, key = group_heap[0]
            user_heap = groups[key]
            _, user = user_heap[0]
            alone = key[0] == 1  # a user in no group: its group's usage and share are its own
            before = None if alone else view.usage_of(user)
            count = self._turn_length(band, view, user, key, None if alone else group_usage[key], user_heap,
                                      group_heap, inv_list, quantum)
            yield user, count
            if view.removals != removals:
                continue  # preemption moved other users' shares: rebuilt at the top
            after = view.user_used[view.user_row[user]] if user in view.user_row else None
            if after is None:
                share = 0.0
            else:
                share = self._share(after, inv, config.weight(user))
            if band.left(user):
                heapq.heapreplace(user_heap, (share, user))
            else:
                heapq.heappop(user_heap)
            if not user_heap:
                heapq.heappop(group_heap)
                continue
            if not alone:
                if after is not None:
                    group_usage[key] = group_usage[key] + (after - before)
                share = self._share(group_usage[key], inv, config.key_weight(key))
            heapq.heapreplace(group_heap, (share, key))

    @staticmethod
    def _share(usage: np.ndarray, inv: np.ndarray, weight: float) -> float:
        # Rounded so that shares equal in exact arithmetic tie (and go to the lower name).
        return round(float((usage * inv).max()) / weight, 12)

    def _build(self, band: Band, view: "CellView", inv: np.ndarray):
        """Heaps of (share, name): users with tasks left per top-level group, and those groups."""
        config = self.shares
        groups: dict[tuple[int, str], list] = {}
        for user in band.users:
            if band.left(user):
                usage = view.usage_of(user)
                groups.setdefault(config.group_key(user), []).append(
                    (self._share(usage, inv, config.weight(user)), user))
        group_usage = {}
        group_heap = []
        for key, heap in groups.items():
            heapq.heapify(heap)
            if key[0] == 1:  # a group of one: its share is its user's
                group_heap.append((heap[0][0], key))
                continue
            usage = sum((view.usage_of(u) for u in config.key_members(key)), np.zeros_like(inv, dtype=np.int64))
            group_usage[key] = usage
            group_heap.append((self._share(usage, inv, config.key_weight(key)), key))
        heapq.heapify(group_heap)
        return groups, group_heap, group_usage

    def _turn_length(self, band: Band, view, user: str, key, group_usage: np.ndarray | None, user_heap,
                     group_heap, inv: list[float], quantum: int) -> int:
        """Tasks of ``user`` that task-by-task DRF would serve in a row (see the module's docstring).
        ``group_usage``: None for a user in no group (its own usage is its group's)."""
        config = self.shares
        user_rival, group_rival = _second(user_heap), _second(group_heap)
        if user_rival is None and group_rival is None:
            return quantum
        w_user, w_group = config.weight(user), config.key_weight(key)
        row = view.user_row.get(user)
        used = view.user_used[row].tolist() if row is not None else [0] * len(inv)
        user_share = [u * i / w_user for u, i in zip(used, inv)]
        group_share = ([u * i / w_group for u, i in zip(group_usage.tolist(), inv)] if group_usage is not None
                       else list(user_share))
        tasks, start = band.queues[user], band.position[user]
        end = min(len(tasks), start + quantum)
        at = start
        while at < end:
            request = tasks[at].request
            run = at + 1
            while run < end and (tasks[run].request is request or tasks[run].request == request):
                run += 1
            n = run - at
            fraction = [v * i for v, i in zip(request.vector.tolist(), inv)]
            stop = _INF
            if user_rival is not None:
                step = [f / w_user for f in fraction]
                stop = _first_crossing(user_share, step, user_rival[0] + self.slack, user < user_rival[1])
            if group_rival is not None:
                step = [f / w_group for f in fraction]
                stop = min(stop, _first_crossing(group_share, step, group_rival[0] + self.slack,
                                                 key < group_rival[1]))
            if stop <= n:
                return at - start + int(stop)
            user_share = [s + n * f / w_user for s, f in zip(user_share, fraction)]
            group_share = [s + n * f / w_group for s, f in zip(group_share, fraction)]
            at = run
        return end - start
