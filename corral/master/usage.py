"""Usage over time: a small bounded ring per task and per machine, fed by the agents' poll answers.

The master core keeps only each task's last reported status (soft state, and
refreshed only when a status changes or on a full report); charts need a
history. :class:`UsageHistory` belongs to the live service (``Master.usage``),
not to the sans-IO core: the link shards hand it every poll answer
(:meth:`UsageHistory.observe`), so it sees every task's usage on every poll
whether or not the core does.

Bounds: at most one sample per ``every_s`` per task and per machine, at most
``samples`` of them (a ring); a task or machine not observed for ``keep_s``
is forgotten. Memory is O(observed tasks × samples), whatever the uptime.

A sample is ``(t, cpu_milli, memory_bytes)`` for a task and
``(t, cpu_milli, memory_bytes, cpu_allocated, memory_allocated)`` for a
machine (its tasks' usage summed; what the scheduler has allocated on it,
all bands, read from the cell view at the same moment).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

ENDED = ("finished", "failed", "killed")

TaskSample = tuple[float, int, int]
MachineSample = tuple[float, int, int, int, int]


class _Ring:
    __slots__ = ("samples", "seen")

    def __init__(self, size: int):
        self.samples: deque = deque(maxlen=size)
        self.seen = 0.0  # when it was last observed (a sample or not)


class UsageHistory:
    """Rings of task and machine usage; thread-safe (its own lock, never the master's)."""

    def __init__(self, samples: int = 180, every_s: float = 2.0, keep_s: float = 900.0):
        if samples < 1 or every_s < 0 or keep_s <= 0:
            raise ValueError("UsageHistory: expected samples >= 1, every_s >= 0, keep_s > 0")
        self.size, self.every_s, self.keep_s = samples, every_s, keep_s
        self._tasks: dict[str, _Ring] = {}
        self._machines: dict[str, _Ring] = {}
        self._lock = threading.Lock()
        self._pruned = 0.0

    def observe(self, machine: str, statuses: Iterable[dict[str, Any]], now: float,
                allocated: tuple[int, int] = (0, 0)) -> None:
        """One poll answer of ``machine``'s agent (its task statuses, docs/agent-protocol.md) at
        ``now``; ``allocated``: (cpu, memory) the scheduler has allocated there now."""
        cpu_sum = memory_sum = 0
        rows = []
        for status in statuses:
            name = status.get("task_id")
            if not isinstance(name, str) or status.get("state") in ENDED:
                continue
            usage = status.get("usage") if isinstance(status.get("usage"), dict) else {}
            cpu, memory = _count(usage.get("cpu_milli")), _count(usage.get("memory_bytes"))
            cpu_sum, memory_sum = cpu_sum + cpu, memory_sum + memory
            rows.append((name, cpu, memory))
        with self._lock:
            for name, cpu, memory in rows:
                self._add(self._tasks, name, now, (now, cpu, memory))
            self._add(self._machines, machine, now, (now, cpu_sum, memory_sum, *allocated))
            if now - self._pruned >= min(60.0, self.keep_s):
                self._prune(now)

    def task(self, name: str) -> list[TaskSample]:
        with self._lock:
            ring = self._tasks.get(name)
            return list(ring.samples) if ring else []

    def machine(self, name: str) -> list[MachineSample]:
        with self._lock:
            ring = self._machines.get(name)
            return list(ring.samples) if ring else []

    def tracked(self) -> tuple[int, int]:
        """How many tasks and machines have a ring (for tests and the curious)."""
        with self._lock:
            return len(self._tasks), len(self._machines)

    def _add(self, rings: dict[str, _Ring], key: str, now: float, sample: tuple) -> None:
        ring = rings.get(key)
        if ring is None:
            ring = rings[key] = _Ring(self.size)
        ring.seen = now
        if not ring.samples or now - ring.samples[-1][0] >= self.every_s:
            ring.samples.append(sample)

    def _prune(self, now: float) -> None:
        self._pruned = now
        for rings in (self._tasks, self._machines):
            for key in [k for k, r in rings.items() if now - r.seen > self.keep_s]:
                del rings[key]


def _count(value: Any) -> int:
    """A usage figure from an agent: a non-negative int (anything else counts as 0)."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0


def allocated_on(state: Any, machine: str) -> tuple[int, int]:
    """(cpu, memory) the cell view has allocated on ``machine``, all priorities (caller holds the lock)."""
    view = state.view
    at = view.index.get(machine)
    if at is None:
        return 0, 0
    used = view.used[:, at, :].sum(axis=0)
    return int(used[0]), int(used[1])


def recorder(master: Any) -> Callable[[str, list[dict[str, Any]]], None] | None:
    """What the link shards call with each poll answer: records it in ``master.usage`` (None if
    the master keeps no usage history)."""
    history = getattr(master, "usage", None)
    if history is None:
        return None

    def record(machine: str, statuses: list[dict[str, Any]]) -> None:
        with master.lock:
            now, allocated = master.core.clock.now(), allocated_on(master.core.state, machine)
        history.observe(machine, statuses, now, allocated)

    return record
