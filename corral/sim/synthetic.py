"""A seeded synthetic heterogeneous cell and workload, for the demo, tests and benchmarks.

Machines come in several shapes (small, medium, large, high-memory, GPU),
sit in racks of 40 and power domains of 10 racks, and carry a few labels.
Tasks come in jobs of many users at a mix of priorities; most tasks belong
to jobs of 10 or more identical tasks, some jobs carry hard or soft
constraints, failure-domain limits or spreading, a few ask for GPUs.
"""

from __future__ import annotations

import numpy as np

from corral.model.constraints import Constraint, SoftConstraint
from corral.model.job import AppClass
from corral.model.machine import Machine
from corral.model.resources import Resources
from corral.sched.request import PendingTask, TaskRequest

GiB = 2**30
MiB = 2**20

# (name, cpu millicores, memory bytes, gpus, gpu model, weight)
MACHINE_SHAPES = (
    ("small", 16_000, 64 * GiB, 0, "", 0.30),
    ("medium", 32_000, 128 * GiB, 0, "", 0.30),
    ("large", 64_000, 256 * GiB, 0, "", 0.20),
    ("highmem", 32_000, 512 * GiB, 0, "", 0.12),
    ("gpu-a100", 64_000, 512 * GiB, 8, "A100", 0.05),
    ("gpu-t4", 32_000, 192 * GiB, 4, "T4", 0.03),
)
RACK_SIZE = 40
RACKS_PER_POWER_DOMAIN = 10

# (cpu millicores, memory bytes): task shapes from tiny sidecars to big batch workers.
TASK_SHAPES = (
    (300, 1 * GiB), (600, 2 * GiB), (1_200, 3 * GiB), (1_200, 6 * GiB), (2_400, 6 * GiB),
    (2_400, 12 * GiB), (4_800, 12 * GiB), (4_800, 24 * GiB), (9_600, 24 * GiB), (9_600, 64 * GiB),
    (600, 12 * GiB), (19_200, 48 * GiB),
)
TASK_SHAPE_WEIGHTS = (8, 10, 12, 10, 12, 10, 10, 8, 6, 4, 5, 2)
PRIORITIES = (0, 1, 2, 4, 6, 8, 9, 10, 11)
PRIORITY_WEIGHTS = (12, 8, 20, 15, 12, 8, 14, 8, 3)


def synthetic_cell(machines: int, seed: int = 0) -> list[Machine]:
    rng = np.random.default_rng(seed)
    weights = np.array([s[-1] for s in MACHINE_SHAPES])
    shapes = rng.choice(len(MACHINE_SHAPES), size=machines, p=weights / weights.sum())
    ssd = rng.random(machines) < 0.3
    kernels = rng.choice(["5.10", "6.1"], size=machines, p=[0.4, 0.6])
    cell = []
    for i in range(machines):
        name, cpu, memory, gpus, model, _ = MACHINE_SHAPES[shapes[i]]
        rack = i // RACK_SIZE
        attributes = {
            "rack": f"r{rack}",
            "power": f"p{rack // RACKS_PER_POWER_DOMAIN}",
            "shape": name,
            "kernel": str(kernels[i]),
        }
        if ssd[i]:
            attributes["ssd"] = "true"
        cell.append(Machine(f"m{i:05d}", Resources(cpu=cpu, memory=memory, disk=500 * GiB, gpu=gpus), model, attributes))
    return cell


def _request(rng: np.random.Generator, job: str, racks: int) -> TaskRequest:
    priority = int(rng.choice(PRIORITIES, p=np.array(PRIORITY_WEIGHTS) / sum(PRIORITY_WEIGHTS)))
    weights = np.array(TASK_SHAPE_WEIGHTS, dtype=float)
    cpu, memory = TASK_SHAPES[int(rng.choice(len(TASK_SHAPES), p=weights / weights.sum()))]
    gpu, gpu_milli, models = 0, 1000, ()
    roll = rng.random()
    if roll < 0.02:
        gpu, gpu_milli = 1, int(rng.choice([250, 500]))
    elif roll < 0.035:
        gpu = int(rng.choice([1, 2, 4]))
        models = ("A100",) if rng.random() < 0.5 else ()
    constraints: tuple[Constraint, ...] = ()
    preferences: tuple[SoftConstraint, ...] = ()
    roll = rng.random()
    if roll < 0.05:
        constraints = (Constraint("ssd", "==", ("true",)),)
    elif roll < 0.08:
        constraints = (Constraint("rack", "!=", (f"r{int(rng.integers(racks))}",)),)
    elif roll < 0.10:
        constraints = (Constraint("kernel", "==", ("6.1",)),)
    if rng.random() < 0.10:
        preferences = (SoftConstraint(Constraint("ssd", "==", ("true",)), 1.0),)
    max_per_domain: tuple[tuple[str, int], ...] = ()
    spread = None
    if priority >= 9 and rng.random() < 0.3:
        spread = "rack"
        if rng.random() < 0.5:
            max_per_domain = (("rack", 2),)
    appclass = AppClass.LATENCY_SENSITIVE if priority >= 9 else AppClass.BATCH
    return TaskRequest(
        Resources(cpu=cpu, memory=memory, gpu=gpu, gpu_milli=gpu_milli, gpu_models=models),
        priority=priority,
        appclass=appclass,
        constraints=constraints,
        preferences=preferences,
        max_per_domain=max_per_domain,
        spread=spread,
        job=job if (spread or max_per_domain) else None,
    )


def synthetic_workload(tasks: int, seed: int = 0, users: int = 50, machines: int = 10_000) -> list[PendingTask]:
    """About 70% of tasks in jobs of 10+ identical tasks, the rest in jobs of 1-9."""
    rng = np.random.default_rng(seed + 1)
    racks = max(1, machines // RACK_SIZE)
    out: list[PendingTask] = []
    job_number = 0
    while len(out) < tasks:
        big = rng.random() < 0.10
        size = int(rng.integers(10, 200)) if big else int(rng.integers(1, 10))
        size = min(size, tasks - len(out))
        user = f"u{int(rng.zipf(1.6)) % users:02d}"
        job = f"job{job_number:06d}"
        job_number += 1
        request = _request(rng, job, racks)
        submitted = float(job_number)
        out.extend(PendingTask(f"{job}/{i}", job, user, request, i, submitted) for i in range(size))
    return out
