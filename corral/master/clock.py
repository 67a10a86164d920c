"""Clocks: the live master reads the wall clock; tests and the simulator a manual one.

There is one manual clock, :class:`ManualClock`: tests move it by hand
(``advance``), the simulator's event engine moves it to each event's time
(``advance_to``, or by setting ``t`` in its inner loop).
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class WallClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """Time in seconds that moves only when told to. ``t`` is the time now; it never goes back."""

    def __init__(self, start: float = 0.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Move ``seconds`` (>= 0) forward."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance by {seconds} s")
        self.t += seconds

    def advance_to(self, t: float) -> None:
        """Move to time ``t`` (not before now)."""
        if t < self.t:
            raise ValueError(f"a clock cannot go back: from {self.t} to {t}")
        self.t = t
