"""A tiny discrete-event core (in the manner of SimPy): a heap of (time, sequence, action).

The sequence number breaks ties between events at the same time in the
order they were scheduled, so a run is a pure function of its inputs and
seed. The engine's clock (a :class:`~corral.master.clock.ManualClock`, which only the engine
moves) is what the master core reads (``Clock.now``).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable

from corral.master.clock import ManualClock


class Engine:
    def __init__(self, start: float = 0.0):
        self.clock = ManualClock(start)
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.processed = 0
        self.last_event = start  # when the latest event processed happened

    @property
    def now(self) -> float:
        return self.clock.t

    def at(self, t: float, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action(*args)`` at time ``t`` (not before now: the past cannot be changed)."""
        if t < self.clock.t:
            raise ValueError(f"cannot schedule at {t}, before now ({self.clock.t})")
        heapq.heappush(self._heap, (t, next(self._seq), action, args))

    def after(self, delay: float, action: Callable[..., Any], *args: Any) -> None:
        self.at(self.clock.t + delay, action, *args)

    def pending(self) -> int:
        return len(self._heap)

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run(self, until: float | None = None) -> int:
        """Process events in time order up to and including ``until`` (all, if None); the clock
        ends at ``until`` if given. Returns the number of events processed by this call."""
        heap, clock, pop = self._heap, self.clock, heapq.heappop
        done = 0
        while heap and (until is None or heap[0][0] <= until):
            t, _, action, args = pop(heap)
            clock.t = t  # never back: at() refuses the past (set directly, this is the hot loop)
            action(*args)
            done += 1
        if done:
            self.last_event = clock.t
        if until is not None and until > clock.t:
            clock.t = until
        self.processed += done
        return done
