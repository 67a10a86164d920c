"""Choosing whom to evict on memory pressure: lowest priority first, only as many as needed."""

from __future__ import annotations

import pytest

from corral.agent.eviction import Candidate, MemoryReading, choose_victims

GiB = 2**30
TASKS = [
    Candidate("prod", priority=10, memory_bytes=4 * GiB, started_at=1),
    Candidate("batch-big", priority=4, memory_bytes=3 * GiB, started_at=2),
    Candidate("batch-small", priority=4, memory_bytes=1 * GiB, started_at=3),
    Candidate("batch-new", priority=4, memory_bytes=1 * GiB, started_at=5),
    Candidate("best-effort", priority=0, memory_bytes=1 * GiB, started_at=4),
]


def without(*names):
    return [c for c in TASKS if c.task_id not in names]


@pytest.mark.parametrize(
    "case, available_gib, threshold, tasks, want",
    [
        ("under the threshold nobody is evicted", 8, 0.9, TASKS, []),
        ("just over the threshold the lowest priority task alone is evicted", 0.5, 0.95, TASKS, ["best-effort"]),
        ("a large excess still takes only the lowest priority in one round", 0, 0.30, TASKS, ["best-effort"]),
        ("within a priority the biggest memory user goes first", 1, 0.85, without("best-effort"), ["batch-big"]),
        ("within a priority as many go as cover the excess, newest first among equals",
         0, 0.75, without("best-effort"), ["batch-big", "batch-new"]),
        ("production goes only when nothing lower is left", 0, 0.9, [TASKS[0]], ["prod"]),
    ],
)
def test_victims(case, available_gib, threshold, tasks, want):
    reading = MemoryReading(total_bytes=16 * GiB, available_bytes=int(available_gib * GiB))
    assert choose_victims(reading, threshold, tasks) == want


def test_over_the_threshold_one_victim_is_chosen_when_usage_is_unknown():
    reading = MemoryReading(total_bytes=100, available_bytes=1)
    tasks = [Candidate("a", 5, 0), Candidate("b", 1, 0), Candidate("c", 1, 0)]
    assert choose_victims(reading, 0.9, tasks) == ["b"]


COLOCATED = [
    Candidate("web", priority=10, memory_bytes=4 * GiB, started_at=1, latency_sensitive=True),
    Candidate("pipeline", priority=9, memory_bytes=2 * GiB, started_at=2),
    Candidate("dev-web", priority=2, memory_bytes=1 * GiB, started_at=3, latency_sensitive=True),
    Candidate("etl", priority=8, memory_bytes=1 * GiB, started_at=4),
]


@pytest.mark.parametrize(
    "case, tasks, want",
    [
        ("inside a band batch goes before latency-sensitive work, even at a higher priority",
         COLOCATED[2:], ["etl"]),
        ("a production batch task goes before a production service of a higher priority",
         COLOCATED[:2], ["pipeline"]),
        ("a latency-sensitive task of a lower band goes before batch of a higher band",
         COLOCATED[1:3], ["dev-web"]),
        ("the whole machine: batch-band batch first", COLOCATED, ["etl"]),
    ],
)
def test_batch_is_evicted_before_latency_sensitive_work(case, tasks, want):
    reading = MemoryReading(total_bytes=16 * GiB, available_bytes=int(0.5 * GiB))
    assert choose_victims(reading, 0.95, tasks) == want
