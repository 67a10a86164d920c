"""Memory pressure: when the machine's memory use crosses a threshold, kill opportunistic work first (beyond
its user's quota: corral/agent/opportunistic.py), then from the lowest priority up, batch before
latency-sensitive work of the same band.

Pure: ``choose_victims`` takes a reading and the live tasks, returns the ids to
evict in order. The reading comes from ``system_reading()`` in a live agent
and from a fake in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from corral.model.priority import band_floor, band_of


@dataclass(frozen=True)
class MemoryReading:
    total_bytes: int
    available_bytes: int

    @property
    def used_fraction(self) -> float:
        if self.total_bytes <= 0:
            return 0.0
        return 1.0 - self.available_bytes / self.total_bytes


@dataclass(frozen=True)
class Candidate:
    task_id: str
    priority: int
    memory_bytes: int
    started_at: float = 0.0
    latency_sensitive: bool = False  # appclass latency-sensitive: evicted after the batch work of its band
    opportunistic: bool = False  # beyond its user's quota: evicted before every regular task

    def eviction_group(self) -> tuple[bool, int, bool, int]:
        """Lower goes first: opportunistic before regular, the priority band, then batch before
        latency-sensitive, then the priority."""
        return (not self.opportunistic, band_floor(band_of(self.priority)), self.latency_sensitive, self.priority)


def system_reading() -> MemoryReading:
    vm = psutil.virtual_memory()
    return MemoryReading(total_bytes=int(vm.total), available_bytes=int(vm.available))


def choose_victims(reading: MemoryReading, threshold: float, candidates: list[Candidate]) -> list[str]:
    """Tasks to kill now so that use falls back to ``threshold`` (a fraction of total memory).

    Tasks are ordered by :meth:`Candidate.eviction_group`: opportunistic tasks
    first (whatever their priority), then the lowest priority band; inside a band batch tasks before latency-sensitive ones (an
    online service keeps its memory while batch work can give it up:
    Sigma/Fuxi colocation); then the lowest priority. One round takes victims
    from the first group present only: within it the largest memory user
    first, then the most recently started, until the victims' memory covers
    the excess (or a victim's usage is unknown, 0). The caller kills them,
    waits until they are gone, reads again and calls again, so a later group
    dies only if killing all earlier ones did not relieve the machine. At
    least one victim whenever the threshold is crossed and there is any
    candidate; nothing under the threshold.
    """
    if reading.used_fraction < threshold or not candidates:
        return []
    excess = (reading.total_bytes - reading.available_bytes) - threshold * reading.total_bytes
    order = sorted(candidates, key=lambda c: (c.eviction_group(), -c.memory_bytes, -c.started_at, c.task_id))
    lowest = order[0].eviction_group()
    victims: list[str] = []
    freed = 0
    for c in order:
        if c.eviction_group() != lowest:
            break
        victims.append(c.task_id)
        freed += c.memory_bytes
        if freed >= excess or c.memory_bytes <= 0:
            break
    return victims
