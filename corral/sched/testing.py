"""Small builders for scheduler tests and examples: cells and requests in a line each."""

from __future__ import annotations

import numpy as np

from corral.model.constraints import Constraint, SoftConstraint
from corral.model.machine import Machine
from corral.model.resources import Resources
from corral.sched.cellview import CellView
from corral.sched.context import EvalContext
from corral.sched.request import PendingTask, PlacedTask, TaskRequest

GiB = 2**30


def machine(name: str, cpu: float = 8, memory_gib: float = 32, gpus: int = 0, gpu_model: str = "", **attributes: str) -> Machine:
    return Machine(name, Resources(cpu=int(cpu * 1000), memory=int(memory_gib * GiB), gpu=gpus), gpu_model, attributes)


def request(cpu: float = 1, memory_gib: float = 1, priority: int = 2, gpu: int = 0, gpu_milli: int = 1000,
            gpu_models: tuple[str, ...] = (), ports: tuple[int, ...] = (), constraints: tuple[str, ...] = (),
            preferences: tuple[tuple[str, float], ...] = (), max_per_domain: tuple[tuple[str, int], ...] = (),
            spread: str | None = None, job: str | None = None, opportunistic: bool = False) -> TaskRequest:
    return TaskRequest(
        Resources(cpu=int(cpu * 1000), memory=int(memory_gib * GiB), gpu=gpu, gpu_milli=gpu_milli,
                  gpu_models=gpu_models, ports=ports),
        priority=priority,
        constraints=tuple(Constraint.parse(c) for c in constraints),
        preferences=tuple(SoftConstraint(Constraint.parse(c), w) for c, w in preferences),
        max_per_domain=max_per_domain,
        spread=spread,
        job=job if job is not None else ("job" if (max_per_domain or spread) else None),
        opportunistic=opportunistic,
    )


def pending(req: TaskRequest, count: int = 1, job: str = "job", user: str = "alice") -> list[PendingTask]:
    return [PendingTask(f"{job}/{i}", job, user, req, i) for i in range(count)]


def occupy(view: CellView, machine_name: str, req: TaskRequest, task_id: str, job: str = "old", user: str = "bob",
           gpus: tuple[int, ...] = ()) -> None:
    """Put a running task on a machine by name."""
    view.place(PlacedTask(task_id, job, user, req, gpus), view.index[machine_name])


def context(view: CellView, req: TaskRequest) -> EvalContext:
    """An evaluation context over every machine of the view."""
    return EvalContext(view, req, np.arange(len(view)))
