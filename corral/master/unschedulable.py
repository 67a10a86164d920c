"""The unschedulable queue: pending tasks a round found no room for wait here, per equivalence class.

Kubernetes keeps unschedulable pods out of its active queue until a cluster
event may make them schedulable; Nomad keys its blocked evaluations by the
computed class of what they ask for and unblocks a class when a node of that
class changes. corral does both at once: a parked task sits in the class of
its request (its :class:`TaskRequest` and its preemption level), and a round
looks only at the *runnable* tasks (pending minus parked), so its cost follows
what could be placed, however long the queue.

Wake rules (``wake``, before every round):

* every machine changed since the last check (its version in the cell view
  went up) is measured against every parked class: the room it has at the
  class's preemption level (free plus what lower priorities could give up)
  holds some number of copies of the class's request (for non-production work
  also the room reservations leave, reclamation); each class with room
  for ``k`` copies on the changed machines gets ``k`` of its tasks back
  (first parked first), whatever its shape or user. So no task stays parked
  while a machine has room for it, and a round does not re-examine a queue of
  10,000 identical tasks when one copy fits;
* a rebuilt view (machines joined or left) and ``flush_after_s`` of quiet
  (constraints, GPUs and ports that room alone does not capture) wake all;
* a job's update or a stale placement wakes that task or job at once.

Room is a necessary condition only: a woken task may still not fit (GPUs,
ports, constraints) and is parked again with a fresh reason. A parked task's
reason was true when it was written; :meth:`stale` tells whether the cell
changed since, so a reader can have it explained again (``MasterCore.pending_reason``).

This module does no I/O; it reads the cell view and the clock it is given.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from corral.master.clock import Clock
from corral.model.priority import preemptible_below
from corral.sched.checkers.reclaim import PRODUCTION_FLOOR

ClassKey = tuple[Any, int]  # (TaskRequest, preemptible below)


def class_key(request: Any) -> ClassKey:
    return request, preemptible_below(request.priority)


class UnschedulableQueue:
    def __init__(self, clock: Clock, flush_after_s: float = 300.0, enabled: bool = True):
        self.clock = clock
        self.flush_after_s = flush_after_s
        self.enabled = enabled
        self.runnable: dict[str, None] = {}  # pending and not parked, in the order they became runnable
        self.parked: dict[ClassKey, dict[str, None]] = {}  # class -> its parked tasks, first parked first
        self.class_of: dict[str, ClassKey] = {}  # parked task -> its class
        self.marks: dict[ClassKey, int] = {}  # class -> the view version its parked tasks' reasons describe
        self.reasons: dict[ClassKey, tuple[str, Any]] = {}  # class -> its parked tasks' (reason, record)
        self._wake_mark = -1  # highest machine version seen by the last wake check
        self._lineage: object = None
        self._flushed_at = clock.now()
        self.woken = 0  # tasks woken by room (for tests and metrics)
        self.unparked = 0  # tasks put back in the rounds by any rule: a round may find something new

    def __len__(self) -> int:
        return len(self.class_of)

    # ---- the state tells us (PendingObserver) ----------------------------------------------------

    def pending_added(self, name: str) -> None:
        self.runnable[name] = None

    def pending_removed(self, name: str) -> None:
        if self.runnable.pop(name, None) is None and name in self.class_of:
            self._take(name)

    def reset(self, pending: Iterable[str]) -> None:
        """Every pending task runnable (a state rebuilt from a checkpoint or a log)."""
        self.runnable = dict.fromkeys(pending)
        self.parked.clear()
        self.class_of.clear()
        self.marks.clear()
        self.reasons.clear()

    # ---- the rounds ------------------------------------------------------------------------------

    def park(self, tasks: list[tuple[str, ClassKey, tuple[str, Any]]], mark: int) -> None:
        """Leave these runnable tasks out of the rounds until a wake rule brings them back, each with
        its class's reason; ``mark`` is the view version the reasons describe (the round's snapshot).
        A class has one reason: the newest, for the tasks parked in it before too."""
        if not self.enabled:
            return
        # Another scheduler's snapshot may have run the wake check since this plan's snapshot: the
        # machines changed in between must still be looked at for these tasks (several profiles).
        self._wake_mark = min(self._wake_mark, mark)
        for name, key, reason in tasks:
            if name in self.runnable:
                del self.runnable[name]
                self.parked.setdefault(key, {})[name] = None
                self.class_of[name] = key
                self.marks[key] = mark
                self.reasons[key] = reason

    def unpark(self, names: Iterable[str]) -> int:
        count = 0
        for name in names:
            if name in self.class_of:
                self._take(name)
                self.runnable[name] = None
                count += 1
        self.unparked += count
        return count

    def unpark_all(self) -> int:
        count = len(self.class_of)
        for key in list(self.parked):
            for name in self.parked.pop(key):
                self.runnable[name] = None
        self.class_of.clear()
        self.marks.clear()
        self.reasons.clear()
        self.unparked += count
        return count

    def _take(self, name: str) -> None:
        key = self.class_of.pop(name)
        members = self.parked[key]
        del members[name]
        if not members:
            del self.parked[key]
            self.marks.pop(key, None)
            self.reasons.pop(key, None)

    def wake(self, view: Any) -> int:
        """Apply the wake rules (see the module's doc) against the live cell view; how many woke."""
        now = self.clock.now()
        mark, self._wake_mark = self._wake_mark, int(view.version.max()) if len(view) else -1
        lineage, self._lineage = self._lineage, view.lineage
        if not self.parked:
            self._flushed_at = now
            return 0
        if lineage is not view.lineage or now - self._flushed_at >= self.flush_after_s:
            self._flushed_at = now
            return self.unpark_all()
        changed = np.flatnonzero(view.version > mark)
        if not len(changed):
            return 0
        by_level: dict[tuple[int, bool], list[ClassKey]] = defaultdict(list)
        for key in self.parked:
            # best-effort work may take what opportunistic tasks hold (corral.sched.preempt)
            by_level[(key[1], key[1] == 0 and not key[0].opportunistic)].append(key)
        woken = 0
        for (below, evicts_opportunistic), keys in by_level.items():
            room = view.available_at(below, changed)  # (changed machines, dims)
            if evicts_opportunistic:
                room = room + view.opportunistic[changed]
            if below < PRODUCTION_FLOOR and view.reserving_below_limit:
                # Non-production work may also go in the room reservations leave (reclamation).
                room = np.maximum(room, view.reclaim_room(changed) + view.used[:below, changed].sum(axis=0))
            vectors = np.array([key[0].vector for key in keys])
            shapes, which = np.unique(vectors, axis=0, return_inverse=True)
            per_dim = np.where(shapes[:, None, :] > 0, room[None, :, :] // np.maximum(shapes[:, None, :], 1),
                               np.iinfo(np.int64).max)
            copies = np.clip(per_dim.min(axis=2), 0, None).sum(axis=1)
            for key, shape in zip(keys, which.reshape(-1)):
                k = int(copies[shape])
                if k > 0:
                    members = self.parked[key]
                    woken += self.unpark(list(itertools.islice(members, k)))
        self.woken += woken
        return woken

    def flush_due(self) -> bool:
        """Will the next wake check flush every parked task by time alone?"""
        return bool(self.class_of) and self.clock.now() - self._flushed_at >= self.flush_after_s

    def reason(self, name: str, view: Any, explain, top: int | None = None) -> tuple[str, Any] | None:
        """The reason of parked task ``name`` (None if it is not parked), explained again with
        ``explain(request) -> (reason, record)`` if the cell changed since it was written. ``top``:
        the view's highest machine version, when the caller asks about many tasks at once."""
        key = self.class_of.get(name)
        if key is None:
            return None
        if top is None:
            top = int(view.version.max()) if len(view) else -1
        if top > self.marks.get(key, -1):
            self.reasons[key] = explain(key[0])
            self.marks[key] = top
        return self.reasons[key]

    def validate(self, pending: dict[str, None]) -> None:
        """Runnable and parked partition the pending tasks (validate mode)."""
        parked = set(self.class_of)
        if parked & self.runnable.keys():
            raise AssertionError(f"tasks both runnable and parked: {sorted(parked & self.runnable.keys())[:3]}")
        if parked | self.runnable.keys() != pending.keys():
            extra = sorted((parked | self.runnable.keys()) ^ pending.keys())[:3]
            raise AssertionError(f"runnable and parked tasks are not the pending ones: {extra}")
        if sum(len(m) for m in self.parked.values()) != len(self.class_of):
            raise AssertionError("the parked classes and the parked tasks disagree")
