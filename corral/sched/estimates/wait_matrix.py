"""Apollo's wait-time matrix: per machine, how long until a task of a given shape fits there.

A machine's load is what holds its room now (``running``: each occupant's limits
and its estimated remaining time) and what waits there for room (``queued``, in
the order it will start: the seam machine queues feed). The expected wait of a
shape is found by playing the future forward: occupants leave at their
remaining times; each queued task starts, in order, at the first moment its
shape fits (no task overtakes the head of the queue), then holds its room for
its estimated runtime; the shape asked about joins behind them and its wait is
the first moment after the last queued start at which it fits. An occupant
whose remaining time is unknown is ``inf`` (never leaves, as far as anyone
knows), and so is the wait of a shape that needs its room; a shape bigger than
the empty machine waits ``inf``.

The matrix holds the wait of each bucket of shapes, cpu cores × memory (as
Apollo's does), at the bucket's upper corner; :meth:`WaitTimeMatrix.expected_wait_s`
answers a shape with the bucket that contains it (the smallest corner at or
above it, so the answer is never optimistic) and a shape beyond the last
bucket exactly. Pure: the loads come from the master (corral/master/estimates.py).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Mapping, Sequence

GIB = 2**30
CPU_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0)  # cores
MEMORY_BUCKETS = (1 * GIB, 4 * GIB, 16 * GIB, 64 * GIB)  # bytes


@dataclass(frozen=True)
class Occupant:
    cpu_milli: int
    memory_bytes: int
    seconds: float  # running: estimated time left; queued: estimated time it will hold the room once started


@dataclass(frozen=True)
class MachineLoad:
    capacity_cpu_milli: int
    capacity_memory: int
    free_cpu_milli: int  # capacity less the limits of what runs (may be below zero with reclaimed work)
    free_memory: int
    running: tuple[Occupant, ...] = ()
    queued: tuple[Occupant, ...] = field(default=())


def wait_until_fits(load: MachineLoad, cpu_milli: int, memory_bytes: int) -> float:
    """Seconds until ``cpu_milli`` × ``memory_bytes`` fits on the machine behind its queue (module doc)."""
    if cpu_milli > load.capacity_cpu_milli or memory_bytes > load.capacity_memory:
        return math.inf
    releases = [(o.seconds, o.cpu_milli, o.memory_bytes) for o in load.running]
    heapq.heapify(releases)
    free = [load.free_cpu_milli, load.free_memory]
    now = 0.0

    def start_at(cpu: int, memory: int) -> float:
        nonlocal now
        while free[0] < cpu or free[1] < memory:
            if not releases:
                return math.inf
            t, c, m = heapq.heappop(releases)
            now = max(now, t)
            free[0] += c
            free[1] += m
        return now

    for q in load.queued:
        if q.cpu_milli > load.capacity_cpu_milli or q.memory_bytes > load.capacity_memory:
            continue  # it can never start here: it holds nothing and blocks no one
        t = start_at(q.cpu_milli, q.memory_bytes)
        if math.isinf(t):
            return math.inf  # the queue's head never starts, so nothing behind it does
        free[0] -= q.cpu_milli
        free[1] -= q.memory_bytes
        heapq.heappush(releases, (t + q.seconds, q.cpu_milli, q.memory_bytes))
    return start_at(cpu_milli, memory_bytes)


class WaitTimeMatrix:
    """The wait-time matrix of every machine given (lazily computed per machine, then kept)."""

    def __init__(self, loads: Mapping[str, MachineLoad], cpu_buckets: Sequence[float] = CPU_BUCKETS,
                 memory_buckets: Sequence[int] = MEMORY_BUCKETS):
        if list(cpu_buckets) != sorted(cpu_buckets) or list(memory_buckets) != sorted(memory_buckets):
            raise ValueError("bucket edges must be increasing")
        self.loads = loads
        self.cpu_buckets = tuple(float(c) for c in cpu_buckets)
        self.memory_buckets = tuple(int(m) for m in memory_buckets)
        self._rows: dict[str, list[list[float]]] = {}
        self._cells: dict[tuple[str, int, int], float] = {}

    @property
    def machines(self) -> list[str]:
        return sorted(self.loads)

    def _load(self, machine: str) -> MachineLoad:
        try:
            return self.loads[machine]
        except KeyError:
            raise KeyError(f"no machine {machine!r} in the wait-time matrix") from None

    def row(self, machine: str) -> list[list[float]]:
        """``row[i][j]``: the wait of ``cpu_buckets[i]`` cores × ``memory_buckets[j]`` bytes."""
        cached = self._rows.get(machine)
        if cached is None:
            load = self._load(machine)
            cached = self._rows[machine] = [
                [wait_until_fits(load, round(cpu * 1000), memory) for memory in self.memory_buckets]
                for cpu in self.cpu_buckets]
        return cached

    def expected_wait_s(self, machine: str, cpu: float, memory_bytes: int) -> float:
        """Seconds until a task of ``cpu`` cores and ``memory_bytes`` fits on ``machine`` (its bucket's wait)."""
        if cpu < 0 or memory_bytes < 0:
            raise ValueError(f"expected a shape >= 0, got cpu {cpu}, memory {memory_bytes}")
        i = bisect_left(self.cpu_buckets, cpu - 1e-9)
        j = bisect_left(self.memory_buckets, memory_bytes)
        if i == len(self.cpu_buckets) or j == len(self.memory_buckets):
            return wait_until_fits(self._load(machine), round(cpu * 1000), memory_bytes)
        cached = self._rows.get(machine)
        if cached is not None:
            return cached[i][j]
        key = (machine, i, j)  # one bucket asked for: that bucket alone, not the whole row
        wait = self._cells.get(key)
        if wait is None:
            wait = self._cells[key] = wait_until_fits(self._load(machine), round(self.cpu_buckets[i] * 1000),
                                                      self.memory_buckets[j])
        return wait
