"""A workload checkpoint: the jobs alive at one moment of a trace (Borg §5.1 repacks such a checkpoint).

In: a :class:`~corral.sim.trace.Trace` and a time (seconds from the trace
start) or ``"peak"``. Out: the jobs alive then, in arrival order. A job is
alive from its arrival until it ends: at ``departure`` or, once started, after
``duration`` — whichever comes first; a job with neither (a service) stays
alive to the end. Tasks are taken to start on arrival: a checkpoint holds
what was asked for, not what a particular scheduler had managed to start.
"""

from __future__ import annotations

import math

import numpy as np

from corral.model.resources import GPU_MILLI_WHOLE
from corral.sim.trace import Trace, TraceJob

PEAK = "peak"


def job_end(job: TraceJob) -> float:
    """When ``job`` stops being alive (``inf``: never, within the trace)."""
    end = math.inf
    if job.departure is not None:
        end = job.departure
    if job.duration is not None:
        end = min(end, job.arrival + job.duration)
    return end


def alive_at(jobs: list[TraceJob], at: float) -> list[TraceJob]:
    """The jobs with ``arrival <= at < end``, in the order given."""
    return [j for j in jobs if j.arrival <= at < job_end(j)]


def peak_time(trace: Trace) -> float:
    """The time of the largest requested dominant share of the cell: over cpu, memory and (in a
    cell with GPUs) GPU, the largest fraction of the cell the alive jobs ask for. Ties go to the
    earliest time. 0.0 for a trace without jobs."""
    jobs = trace.jobs
    if not jobs:
        return 0.0
    arrival = np.array([j.arrival for j in jobs], dtype=float)
    end = np.array([job_end(j) for j in jobs], dtype=float)
    tasks = np.array([j.tasks for j in jobs], dtype=float)
    demand = [np.array([j.cpu for j in jobs], dtype=float) * tasks,
              np.array([j.memory for j in jobs], dtype=float) * tasks]
    capacity = [sum(m.cpu for m in trace.machines), sum(m.memory for m in trace.machines)]
    gpus = sum(m.gpu for m in trace.machines)
    if gpus:
        demand.append(np.array([j.gpu * j.gpu_milli for j in jobs], dtype=float) * tasks)
        capacity.append(gpus * GPU_MILLI_WHOLE)
    # Without machines the shares are meaningless; the raw demand still peaks at the same time.
    share = np.stack([d / c if c else d for d, c in zip(demand, capacity)], axis=1)
    # One +share at each arrival, one -share at each (finite) end. At equal times ends come
    # first: a job ending at t is not alive at t, so it never adds to a job arriving at t.
    finite = np.isfinite(end)
    times = np.concatenate((end[finite], arrival))
    kinds = np.concatenate((np.zeros(finite.sum()), np.ones(len(jobs))))  # 0: end, 1: arrival
    deltas = np.concatenate((-share[finite], share))
    order = np.lexsort((kinds, times))
    running = np.cumsum(deltas[order], axis=0)
    dominant = running.max(axis=1)
    # Only after an arrival can the dominant share rise, so its maximum sits at an arrival.
    dominant[kinds[order] == 0] = -np.inf
    best = int(np.argmax(dominant))
    return float(times[order][best])


def resolve_time(trace: Trace, at: float | str = PEAK) -> float:
    """``at`` as seconds: ``"peak"`` is :func:`peak_time`; a number (or its text) is taken as is."""
    if at == PEAK:
        return peak_time(trace)
    try:
        seconds = float(at)
    except (TypeError, ValueError):
        raise ValueError(f"expected a time in seconds or {PEAK!r}, got {at!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a time in seconds >= 0 or {PEAK!r}, got {at!r}")
    return seconds


def snapshot(trace: Trace, at: float | str = PEAK) -> list[TraceJob]:
    """The jobs alive at ``at`` (seconds, or ``"peak"``), in arrival order."""
    return alive_at(trace.jobs, resolve_time(trace, at))
