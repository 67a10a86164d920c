"""Per-task reservations for resource reclamation (Borg §5.5): a pure policy, no I/O, no clock.

A task's *reservation* is the master's estimate of what it will use. It starts
at the task's limit when the task starts; as usage samples arrive it decays
towards the recent usage peak plus a safety margin, reaching it ``decay_s``
after the decay began (Borg: after 300 s), and it rises at once when usage
rises above what it holds. It is never above the limit, and never below the
recent peak plus the margin (capped at the limit).

Time is whatever the caller passes (the master's clock, the simulator's
virtual one). Vectors are over the resources the caller chooses (cpu and
memory in corral's units).

    target(t)  = min(limit, ceil(peak over (t - peak_window_s, t] x (1 + margin)))
    r(t)       = target(t)                                     if target(t) >= r(prev)
               = max(target(t), r(prev) - (limit - target(t)) x (t - prev) / decay_s)  otherwise
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReservationPolicy:
    margin: float = 0.1  # safety margin over the usage peak
    decay_s: float = 300.0  # from the limit down to peak + margin (Borg: 300 s)
    peak_window_s: float = 300.0  # how far back the usage peak looks

    def __post_init__(self) -> None:
        for name in ("margin", "decay_s", "peak_window_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (
                    name != "margin" and value == 0):
                raise ValueError(f"{name}: expected a number {'>= 0' if name == 'margin' else '> 0'}, got {value!r}")


class _Task:
    __slots__ = ("limit", "reservation", "at", "samples")

    def __init__(self, limit: np.ndarray, now: float):
        self.limit = np.asarray(limit, dtype=np.int64).copy()
        self.reservation = self.limit.astype(float)  # kept exact; shown rounded up
        self.at = now
        self.samples: deque[tuple[float, np.ndarray]] = deque()


class Reservations:
    """The reservations of running tasks, by task name."""

    def __init__(self, policy: ReservationPolicy | None = None):
        self.policy = policy or ReservationPolicy()
        self._tasks: dict[str, _Task] = {}

    def __contains__(self, task: str) -> bool:
        return task in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, task: str, limit: np.ndarray, now: float) -> np.ndarray:
        """A task started (or restarted elsewhere): its reservation is its limit."""
        self._tasks[task] = _Task(limit, now)
        return self.of(task)

    def stop(self, task: str) -> None:
        self._tasks.pop(task, None)

    def of(self, task: str) -> np.ndarray:
        return _shown(self._tasks[task].reservation)

    def peak(self, task: str) -> np.ndarray | None:
        """The usage peak in the window, or None before any sample."""
        samples = self._tasks[task].samples
        return np.max([u for _, u in samples], axis=0) if samples else None

    def observe(self, task: str, usage: np.ndarray, now: float) -> np.ndarray:
        """A usage sample of ``task`` at ``now``; returns its reservation after it."""
        state = self._tasks[task]
        state.samples.append((now, np.asarray(usage, dtype=np.int64).copy()))
        return self._advance(state, now)

    def advance(self, now: float) -> None:
        """Move every reservation to ``now`` (decay goes on between samples; old peaks leave the window)."""
        for state in self._tasks.values():
            self._advance(state, now)

    def _advance(self, state: _Task, now: float) -> np.ndarray:
        policy = self.policy
        samples = state.samples
        while samples and samples[0][0] <= now - policy.peak_window_s:
            samples.popleft()
        if not samples:  # no usage known in the window: hold what it has (the limit until a first sample)
            state.at = max(state.at, now)
            return _shown(state.reservation)
        peak = np.max([u for _, u in samples], axis=0)
        # Rounded first: 900 x 1.1 is 990.0000000000001 in floating point and should reserve 990.
        target = np.minimum(state.limit, np.ceil(np.round(peak * (1 + policy.margin), 6)).astype(np.int64))
        elapsed = max(0.0, now - state.at)
        decayed = np.maximum(target, state.reservation - (state.limit - target) * (elapsed / policy.decay_s))
        state.reservation = np.where(target >= state.reservation, target, decayed).astype(float)
        state.at = max(state.at, now)
        return _shown(state.reservation)


def _shown(reservation: np.ndarray) -> np.ndarray:
    return np.ceil(np.round(reservation, 6)).astype(np.int64)
