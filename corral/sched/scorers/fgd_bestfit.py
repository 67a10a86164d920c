"""Best fit as the FGD paper defines it (PROTOCOL §6, BestFitScore): cpu and total GPU left, half each.

``s = (cpuLeft - cpu)/128000 * 0.5 + (gpuLeft - gpu)/8000 * 0.5``, score
``int((1 - s) * 100)``. Named ``fgd-bestfit`` to keep it apart from corral's
``best-fit`` (fractions of each machine's own capacity); the openb command
calls it ``best-fit``. The artifact min-max normalises over feasible
machines, which keeps the argmax set, so the raw integer score is returned.
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import CPU, GPU
from corral.sched.context import EvalContext
from corral.sched.scorers.base import Scorer
from corral.sched.scorers.dot_product import MAX_SPEC_CPU, MAX_SPEC_GPU


class FgdBestFit(Scorer):
    name = "fgd-bestfit"

    def raw(self, ctx: EvalContext) -> np.ndarray:
        res = ctx.req.resources
        cpu = (ctx.free[:, CPU] - res.cpu).astype(np.float64)
        gpu = (ctx.free[:, GPU] - res.gpu_total_milli).astype(np.float64)
        s = cpu / MAX_SPEC_CPU * 0.5 + gpu / MAX_SPEC_GPU * 0.5
        return np.trunc((1.0 - s) * 100.0)

    def score(self, ctx: EvalContext) -> np.ndarray:
        return self.raw(ctx) / 100.0
