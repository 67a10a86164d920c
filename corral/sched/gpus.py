"""Choosing which GPUs of a machine a task gets."""

from __future__ import annotations

import numpy as np

from corral.sched.cellview import CellView
from corral.sched.request import TaskRequest


def select_gpus_best(view: CellView, machine: int, req: TaskRequest) -> tuple[int, ...]:
    """A shared GPU: the one with the least idle share that still fits (lowest index on ties),
    to keep whole GPUs free. Whole GPUs: the first ``req.gpu`` by index with room."""
    if not req.gpu:
        return ()
    idle = view.gpu_idle[machine, : view.gpu_count[machine]]
    fits = np.flatnonzero(idle >= req.gpu_milli)
    if len(fits) < req.gpu:
        raise ValueError(f"{view.names[machine]} has no room for {req.describe()}")
    if req.is_gpu_share:
        return (int(fits[np.argmin(idle[fits])]),)  # argmin takes the first of equal values
    return tuple(int(g) for g in fits[: req.gpu])
