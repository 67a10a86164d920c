"""Enough free cpu, memory, disk and GPU (in total) for the task."""

from __future__ import annotations

from collections import Counter

import numpy as np

from corral.model.resources import DIMS
from corral.sched.checkers.base import Checker
from corral.sched.context import EvalContext


class ResourcesFit(Checker):
    name = "resources"
    exhausts = True

    def check(self, ctx: EvalContext) -> np.ndarray:
        return np.logical_and.reduce(ctx.free >= ctx.req.vector, axis=1)  # .all() costs more on small arrays

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        # Nomad's "exhausted on which resource": the first dimension that is short.
        short = ctx.free[rejected] < ctx.req.vector
        first = short.argmax(axis=1)
        return Counter(f"insufficient {DIMS[d]}" for d in first)
