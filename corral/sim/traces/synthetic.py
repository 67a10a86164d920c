"""A seeded Borg-like trace: a heterogeneous cell, production services, diurnal batch, best-effort filler.

Sizes (Borg, Verma et al. 2015; Tirmazi et al. 2020, in spirit): production services (priority 9-10,
latency-sensitive) are deployed near t=0 and run until the end, a few arrive or leave during the
day; they request about ``PROD_SHARE`` of the cell's CPU and use well below their limit. Batch jobs
(2-8) arrive at a diurnal rate (peak 15:00, trough 03:00) with lognormal durations (median 20 min,
a tail to hours) and 1-1000 tasks; best-effort jobs (0-1) arrive evenly. The requested CPU
averaged over the day is computed in :func:`expected_cpu_share` (71 % of the cell at 100 tasks per
machine per day, the defaults' ratio); :func:`requested_cpu` measures it on a generated trace.

Everything is drawn with NumPy from ``seed`` (jobs are objects, tasks are counts), so a
1,000,000-task trace takes about a second and the same seed gives the same trace.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from corral.sim.synthetic import MACHINE_SHAPES, TASK_SHAPE_WEIGHTS, TASK_SHAPES
from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.common import rack_attributes

USERS = 50
PROD_SHARE = 0.45  # of the cell's CPU requested by production services
BE_SHARE = 0.08  # of the tasks that are best-effort
BATCH_MEDIAN_S, BATCH_SIGMA = 20 * 60, 1.4  # lognormal task duration of a batch job
BE_MEDIAN_S, BE_SIGMA = 30 * 60, 1.2
DURATION_RANGE = (60.0, 24 * 3600.0)
DIURNAL_AMPLITUDE, DIURNAL_PEAK_H = 0.5, 15.0  # batch arrival rate is 1 +- 0.5 of its mean
SERVICE_EARLY, SERVICE_LATE, SERVICE_LEAVE = 0.85, 0.15, 0.15  # deployed in the first 5 min / later / leave
# The time-averaged fraction of services alive: early ones all day, or half of it if they leave; late
# ones arrive uniformly (alive half the day), a quarter of it if they also leave.
SERVICE_ALIVE = (SERVICE_EARLY * (1 - SERVICE_LEAVE / 2) + SERVICE_LATE * ((1 - SERVICE_LEAVE) / 2 + SERVICE_LEAVE / 4))
BATCH_PRIORITIES = (np.arange(2, 9), np.array([25, 10, 20, 10, 15, 5, 15], dtype=float))
GPU_JOB_SHARE = 0.03  # of batch jobs; (gpus, gpu_milli, weight)
GPU_REQUESTS = ((1, 500, 0.30), (1, 1000, 0.40), (2, 1000, 0.15), (4, 1000, 0.10), (8, 1000, 0.05))

_CPU = np.array([s[0] for s in TASK_SHAPES])
_MEMORY = np.array([s[1] for s in TASK_SHAPES])
_SHAPE_P = np.array(TASK_SHAPE_WEIGHTS, dtype=float) / sum(TASK_SHAPE_WEIGHTS)
_USER_P = 1.0 / np.arange(1, USERS + 1)  # a few heavy users, a long tail (Zipf)
_USER_P /= _USER_P.sum()


def synthetic_trace(machines: int = 10_000, tasks: int = 1_000_000, hours: float = 24.0, seed: int = 0) -> Trace:
    """A cell of ``machines`` machines and exactly ``tasks`` tasks arriving over ``hours`` hours.

    Load scales with tasks / (machines * hours), see :func:`expected_cpu_share`.
    """
    cell_seed, work_seed = np.random.SeedSequence(seed).spawn(2)
    cell = _cell(machines, np.random.default_rng(cell_seed))
    rng = np.random.default_rng(work_seed)
    horizon = hours * 3600.0
    capacity = sum(m.cpu for m in cell)
    service_tasks = min(tasks // 2, round(PROD_SHARE * capacity / float(_CPU @ _SHAPE_P)))
    be_tasks = round(BE_SHARE * tasks)
    batch_tasks = tasks - service_tasks - be_tasks
    jobs = _services(rng, service_tasks, horizon, machines)
    jobs += _batch(rng, "batch", batch_tasks, horizon, BATCH_MEDIAN_S, BATCH_SIGMA, True, machines)
    jobs += _batch(rng, "be", be_tasks, horizon, BE_MEDIAN_S, BE_SIGMA, False, machines)
    notes = [
        f"Synthetic Borg-like trace (seed {seed}): {machines} machines, {tasks} tasks over {hours:g} h; "
        f"production services request about {PROD_SHARE:.0%} of the cell's CPU, batch and best-effort "
        f"jobs bring the request averaged over the day to about {expected_cpu_share(machines, tasks, hours, capacity):.0%}.",
        "Usage is drawn below the limit: services use 20-60 % of their CPU and 50-90 % of their memory, "
        "batch and best-effort 50-95 % and 60-95 %.",
    ]
    return Trace("synthetic", cell, sort_jobs(jobs), source=f"synthetic seed={seed}", notes=notes)


def load_synthetic(path: str | Path | None = None, *, seed: int = 0, machines: int = 200, tasks: int = 20_000,
                   hours: float = 24.0) -> Trace:
    """The registry's ``synthetic``: small defaults for quick runs (the same 100 tasks per machine per day)."""
    if path is not None:
        raise TraceError(path, 0, "the synthetic trace reads no file; give sizes as "
                                  "synthetic:machines=N,tasks=N,hours=H")
    if machines < 1 or tasks < 1 or hours <= 0:
        raise TraceError("synthetic", 0, f"expected machines >= 1, tasks >= 1 and hours > 0, got machines={machines}, "
                                         f"tasks={tasks}, hours={hours:g}")
    return synthetic_trace(machines, tasks, hours, seed)


def expected_cpu_share(machines: int, tasks: int, hours: float, capacity: float | None = None) -> float:
    """The requested CPU as a share of capacity, averaged over the day, from the distributions' means.

    Batch and best-effort tasks in flight = arrival rate x mean duration (Little's law, so the
    first hour's warm-up is ignored); services request ``PROD_SHARE`` of the cell and are alive
    for the fraction of the day :data:`SERVICE_ALIVE`. Clipping durations to 1 min .. 24 h is ignored.
    """
    if capacity is None:
        weights = np.array([s[-1] for s in MACHINE_SHAPES])
        capacity = machines * float(np.array([s[1] for s in MACHINE_SHAPES]) @ weights / weights.sum())
    mean_cpu = float(_CPU @ _SHAPE_P)
    service = min(tasks // 2, round(PROD_SHARE * capacity / mean_cpu))
    be = round(BE_SHARE * tasks)
    batch = tasks - service - be
    seconds = hours * 3600.0
    in_flight = (batch * BATCH_MEDIAN_S * math.exp(BATCH_SIGMA**2 / 2) + be * BE_MEDIAN_S * math.exp(BE_SIGMA**2 / 2))
    return (service * SERVICE_ALIVE * mean_cpu + in_flight / seconds * mean_cpu) / capacity


def requested_cpu(trace: Trace, times: np.ndarray) -> np.ndarray:
    """The CPU (millicores) requested by the jobs alive at each of ``times``, as if every task ran at once."""
    arrival = np.array([j.arrival for j in trace.jobs])
    end = np.array([min(math.inf if j.duration is None else j.arrival + j.duration,
                        math.inf if j.departure is None else j.departure) for j in trace.jobs])
    amount = np.array([j.cpu * j.tasks for j in trace.jobs], dtype=float)
    times = np.asarray(times, dtype=float)
    alive = (arrival[None, :] <= times[:, None]) & (times[:, None] < end[None, :])
    return alive.astype(float) @ amount


def _cell(machines: int, rng: np.random.Generator) -> list[TraceMachine]:
    weights = np.array([s[-1] for s in MACHINE_SHAPES])
    shapes = rng.choice(len(MACHINE_SHAPES), size=machines, p=weights / weights.sum()).tolist()
    cell = []
    for i, k in enumerate(shapes):
        name, cpu, memory, gpus, model, _ = MACHINE_SHAPES[k]
        cell.append(TraceMachine(f"m{i:05d}", cpu, memory, gpus, model, rack_attributes(i, shape=name)))
    return cell


def _sizes(rng: np.random.Generator, total: int, median: float, sigma: float, largest: int) -> np.ndarray:
    """Job sizes (tasks) from a lognormal clipped to 1..largest, summing exactly to ``total``."""
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    out = []
    remaining = total
    while remaining > 0:
        draw = np.clip(np.ceil(rng.lognormal(math.log(median), sigma, size=max(16, remaining // 4))), 1, largest)
        draw = draw.astype(np.int64)
        cut = int(np.searchsorted(np.cumsum(draw), remaining))  # first index where the sum reaches remaining
        draw = draw[: cut + 1]
        draw[-1] -= max(0, int(draw.sum()) - remaining)
        out.append(draw)
        remaining -= int(draw.sum())
    return np.concatenate(out)


def _largest_job(machines: int) -> int:
    """1000 tasks, but at most half the machines: one job must not swamp a small test cell."""
    return max(1, min(1000, machines // 2))


def _shapes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    k = rng.choice(len(TASK_SHAPES), size=n, p=_SHAPE_P)
    return _CPU[k], _MEMORY[k]


def _users(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(USERS, size=n, p=_USER_P)


def _services(rng: np.random.Generator, total: int, horizon: float, machines: int) -> list[TraceJob]:
    sizes = _sizes(rng, total, 8, 1.2, _largest_job(machines))
    n = len(sizes)
    cpu, memory = _shapes(rng, n)
    late = rng.random(n) < SERVICE_LATE
    arrival = np.where(late, rng.random(n) * horizon, rng.random(n) * min(300.0, horizon))
    leaves = rng.random(n) < SERVICE_LEAVE
    departure = arrival + rng.random(n) * (horizon - arrival)
    priority = np.where(rng.random(n) < 0.75, 9, 10)
    cpu_use = (cpu * rng.uniform(0.2, 0.6, n)).astype(np.int64)
    memory_use = (memory * rng.uniform(0.5, 0.9, n)).astype(np.int64)
    # A quarter of the services that could still fit spread one task per machine (Borg's anti-affinity).
    spread = (rng.random(n) < 0.25) & (sizes <= max(1, machines // 20))
    users = _users(rng, n)
    jobs = []
    for i, (size, a, d, lv, c, m, p, cu, mu, sp, u) in enumerate(zip(
            sizes.tolist(), arrival.round(3).tolist(), departure.round(3).tolist(), leaves.tolist(), cpu.tolist(),
            memory.tolist(), priority.tolist(), cpu_use.tolist(), memory_use.tolist(), spread.tolist(),
            users.tolist())):
        jobs.append(TraceJob(f"svc-{i:06d}", f"user{u:02d}", a, c, m, size, None, d if lv else None,
                             priority=p, appclass="latency-sensitive", cpu_usage=cu, memory_usage=mu,
                             max_per_machine=1 if sp else None))
    return jobs


def _batch(rng: np.random.Generator, kind: str, total: int, horizon: float, median: float, sigma: float,
           diurnal: bool, machines: int) -> list[TraceJob]:
    sizes = _sizes(rng, total, 4 if kind == "batch" else 2, 1.6, _largest_job(machines))
    n = len(sizes)
    cpu, memory = _shapes(rng, n)
    arrival = _diurnal_arrivals(rng, n, horizon) if diurnal else rng.random(n) * horizon
    duration = np.clip(rng.lognormal(math.log(median), sigma, n), *DURATION_RANGE)
    if kind == "batch":
        values, weights = BATCH_PRIORITIES
        priority = rng.choice(values, size=n, p=weights / weights.sum())
    else:
        priority = rng.integers(0, 2, size=n)
    cpu_use = (cpu * rng.uniform(0.5, 0.95, n)).astype(np.int64)
    memory_use = (memory * rng.uniform(0.6, 0.95, n)).astype(np.int64)
    gpu, gpu_milli, a100 = np.zeros(n, np.int64), np.full(n, 1000), np.zeros(n, bool)
    if kind == "batch":
        wants = np.flatnonzero(rng.random(n) < GPU_JOB_SHARE)
        weights = np.array([g[2] for g in GPU_REQUESTS])
        pick = rng.choice(len(GPU_REQUESTS), size=len(wants), p=weights / weights.sum())
        gpu[wants] = np.array([g[0] for g in GPU_REQUESTS])[pick]
        gpu_milli[wants] = np.array([g[1] for g in GPU_REQUESTS])[pick]
        a100[wants] = (rng.random(len(wants)) < 0.3) | (gpu[wants] > 4)  # only A100 machines have 8 GPUs
    users = _users(rng, n)
    jobs = []
    for i, (size, a, d, c, m, p, cu, mu, g, gm, model, u) in enumerate(zip(
            sizes.tolist(), arrival.round(3).tolist(), duration.round(3).tolist(), cpu.tolist(), memory.tolist(),
            priority.tolist(), cpu_use.tolist(), memory_use.tolist(), gpu.tolist(), gpu_milli.tolist(),
            a100.tolist(), users.tolist())):
        jobs.append(TraceJob(f"{kind}-{i:06d}", f"user{u:02d}", a, c, m, size, d, gpu=g, gpu_milli=gm,
                             gpu_models=("A100",) if model else (), priority=p, appclass="batch",
                             cpu_usage=cu, memory_usage=mu))
    return jobs


def _diurnal_arrivals(rng: np.random.Generator, n: int, horizon: float) -> np.ndarray:
    """``n`` times in [0, horizon) at a rate 1 + A sin(...) peaking at 15:00 (the trace starts at midnight)."""
    grid = np.linspace(0.0, horizon, 4097)
    rate = 1 + DIURNAL_AMPLITUDE * np.sin(2 * np.pi * (grid / 86400.0 - (DIURNAL_PEAK_H - 6) / 24))
    cumulative = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2)])
    return np.interp(rng.random(n) * cumulative[-1], cumulative, grid)


# Online services' use over the day (corral sim colocate, the replays' usage reports): the trace's
# ``cpu_usage`` / ``memory_usage`` is the mean, a sine around it peaks at SERVICE_USAGE_PEAK_H and never
# reaches the limit; batch uses its mean. Memory swings much less than CPU (caches and heaps stay
# resident through the night; traces/README.md says which published figures these follow).
SERVICE_USAGE_AMPLITUDE, SERVICE_USAGE_PEAK_H = 0.5, 20.0
SERVICE_MEMORY_AMPLITUDE = 0.1
SERVICE_USAGE_CEILING = 0.95  # of the limit


def _wave(t: float, amplitude: float) -> float:
    return 1 + amplitude * math.sin(2 * math.pi * (t / 86400.0 - (SERVICE_USAGE_PEAK_H - 6) / 24))


def cpu_usage_at(job: TraceJob, t: float) -> int:
    """Millicores one task of ``job`` uses at ``t`` (seconds from midnight): diurnal for latency-sensitive
    services (mean ``cpu_usage``, ±``SERVICE_USAGE_AMPLITUDE`` of it, below the limit), flat for batch;
    the limit where the trace gives no usage."""
    mean = job.cpu if job.cpu_usage is None else job.cpu_usage
    if job.appclass != "latency-sensitive":
        return mean
    return int(min(mean * _wave(t, SERVICE_USAGE_AMPLITUDE), SERVICE_USAGE_CEILING * job.cpu))


def memory_usage_at(job: TraceJob, t: float) -> int:
    """Bytes one task of ``job`` uses at ``t``: diurnal for services (mean ``memory_usage``,
    ±``SERVICE_MEMORY_AMPLITUDE`` of it, in phase with the CPU, below the limit), flat for batch; the
    limit where the trace gives no usage."""
    mean = job.memory if job.memory_usage is None else job.memory_usage
    if job.appclass != "latency-sensitive":
        return mean
    return int(min(mean * _wave(t, SERVICE_MEMORY_AMPLITUDE), SERVICE_USAGE_CEILING * job.memory))


def usage_at(job: TraceJob, t: float) -> tuple[int, int]:
    """(cpu millicores, memory bytes) one task of ``job`` uses at ``t``: what a simulated agent reports."""
    return cpu_usage_at(job, t), memory_usage_at(job, t)
