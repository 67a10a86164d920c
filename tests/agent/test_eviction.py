"""Choosing whom to evict on memory pressure: lowest priority first, only as many as needed."""

from __future__ import annotations

import pytest

from corral.agent.eviction import Candidate, MemoryReading, choose_victims

GiB = 2**30
TASKS = [
    Candidate("prod", priority=10, memory_bytes=4 * GiB, started_at=1),
    Candidate("batch-big", priority=4, memory_bytes=3 * GiB, started_at=2),
    Candidate("batch-small", priority=4, memory_bytes=1 * GiB, started_at=3),
    Candidate("best-effort", priority=0, memory_bytes=1 * GiB, started_at=4),
]


@pytest.mark.parametrize(
    "case, available_gib, threshold, want",
    [
        ("under the threshold nobody is evicted", 8, 0.9, []),
        ("just over the threshold the lowest priority task alone is evicted", 0.5, 0.95, ["best-effort"]),
        ("a larger excess takes the next priority, biggest memory user first",
         1, 0.80, ["best-effort", "batch-big"]),
        ("an excess larger than all lower priorities together reaches production last",
         0, 0.30, ["best-effort", "batch-big", "batch-small", "prod"]),
    ],
)
def test_victims(case, available_gib, threshold, want):
    reading = MemoryReading(total_bytes=16 * GiB, available_bytes=int(available_gib * GiB))
    assert choose_victims(reading, threshold, TASKS) == want


def test_over_the_threshold_one_victim_is_chosen_even_when_usage_is_unknown():
    reading = MemoryReading(total_bytes=100, available_bytes=1)
    tasks = [Candidate("a", 5, 0), Candidate("b", 1, 0)]
    assert choose_victims(reading, 0.9, tasks) == ["b"]
