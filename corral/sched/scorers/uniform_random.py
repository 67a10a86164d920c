"""Uniform random placement, as the FGD artifact's RandomScore (PROTOCOL §6): every decision is a
fresh uniform draw among the feasible machines, and a shared-GPU task gets a uniform GPU with room.

Unlike corral's ``random`` scorer (a hash of machine and version, stable until the
machine changes, so cacheable), this one draws anew on every evaluation from
one seeded generator: it is neither machine-local nor predictable, so the
scheduler never caches it.
"""

from __future__ import annotations

import numpy as np

from corral.sched.cellview import CellView
from corral.sched.context import EvalContext
from corral.sched.gpus import select_gpus_best
from corral.sched.request import TaskRequest
from corral.sched.scorers.base import Scorer


class UniformRandom(Scorer):
    name = "uniform-random"
    machine_local = False
    predictable = False

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def score(self, ctx: EvalContext) -> np.ndarray:
        return self.rng.random(len(ctx))

    def select_gpus(self, view: CellView, machine: int, req: TaskRequest) -> tuple[int, ...]:
        """A shared GPU: uniform among those with room; whole GPUs: as ``select_gpus_best``."""
        if not req.is_gpu_share:
            return select_gpus_best(view, machine, req)
        idle = view.gpu_idle[machine, : view.gpu_count[machine]]
        fits = np.flatnonzero(idle >= req.gpu_milli)
        return (int(fits[self.rng.integers(len(fits))]),)
