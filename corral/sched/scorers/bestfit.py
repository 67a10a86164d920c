"""Best fit: prefer the machine the task fills most tightly."""

from __future__ import annotations

import numpy as np

from corral.sched.context import EvalContext
from corral.sched.scorers.base import Scorer, left_after


class BestFit(Scorer):
    name = "best-fit"

    def score(self, ctx: EvalContext) -> np.ndarray:
        left = left_after(ctx)
        return 1.0 - np.add.reduce(left, axis=1) / left.shape[1]
