"""Worst fit in the style of E-PVM: spread load by the marginal cost of utilisation.

E-PVM prices each resource of a machine at ``base ** utilisation``, so filling
an already busy machine costs much more than filling an idle one. The score
is one minus the marginal cost of placing the task, scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np

from corral.sched.context import EvalContext
from corral.sched.scorers.base import Scorer, left_after, packing_dims

BASE = 100.0


class WorstFit(Scorer):
    name = "worst-fit"

    def score(self, ctx: EvalContext) -> np.ndarray:
        dims = packing_dims(ctx.req)
        capacity = ctx.capacity[:, dims]
        before = 1.0 - np.divide(ctx.free[:, dims], capacity, out=np.ones(capacity.shape), where=capacity > 0)
        after = 1.0 - left_after(ctx)
        marginal = (np.power(BASE, after) - np.power(BASE, before)).sum(axis=1)
        return 1.0 - marginal / (after.shape[1] * (BASE - 1.0))
