"""Tiny hand-made cells and workloads whose compaction answers are known."""

from corral.sim.trace import Trace, TraceJob, TraceMachine

GiB = 2**30


def machines(n: int, cpu: int = 4000, memory: int = 16 * GiB) -> list[TraceMachine]:
    return [TraceMachine(f"m{i:03d}", cpu, memory) for i in range(n)]


def job(name: str, tasks: int, cpu: int, memory: int = GiB, priority: int = 2, arrival: float = 0.0,
        **extra) -> TraceJob:
    return TraceJob(name, "alice", arrival, cpu, memory, tasks=tasks, priority=priority, **extra)


def trace(cell: list[TraceMachine], jobs: list[TraceJob], name: str = "tiny") -> Trace:
    return Trace(name, cell, sorted(jobs, key=lambda j: (j.arrival, j.name)), source="hand-made")
