"""Soft constraints: the weighted share of the task's preferences a machine satisfies."""

from __future__ import annotations

import numpy as np

from corral.sched.checkers.constraints import constraint_mask
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest
from corral.sched.scorers.base import Scorer


class SoftConstraints(Scorer):
    name = "soft-constraints"

    def applies(self, req: TaskRequest) -> bool:
        return bool(req.preferences)

    def score(self, ctx: EvalContext) -> np.ndarray:
        total = sum(p.weight for p in ctx.req.preferences)
        met = np.zeros(len(ctx))
        for pref in ctx.req.preferences:
            met += pref.weight * constraint_mask(ctx.view, pref.constraint, ctx.idx)
        return met / total
