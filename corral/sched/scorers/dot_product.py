"""Dot product (Tetris-style alignment), as in the FGD artifact's DotProductScore (PROTOCOL §6).

Prefers machines whose free cpu and GPU align least with the task's demand:
``d = (cpuLeft/128000)(cpu/128000) + (gpuLeft/8000)(gpu/8000)``,
score ``int(100 (1 - d/2))``; 0 when the cpu does not fit. Integer scores, so
ties are common and go to the lowest rank.
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import CPU, GPU
from corral.sched.context import EvalContext
from corral.sched.scorers.base import Scorer

MAX_SPEC_CPU = 128_000.0
MAX_SPEC_GPU = 8_000.0


class DotProduct(Scorer):
    name = "dot-product"

    def raw(self, ctx: EvalContext) -> np.ndarray:
        res = ctx.req.resources
        cpu_left = ctx.free[:, CPU].astype(np.float64)
        gpu_left = ctx.free[:, GPU].astype(np.float64)
        d = (cpu_left / MAX_SPEC_CPU) * (res.cpu / MAX_SPEC_CPU) + (gpu_left / MAX_SPEC_GPU) * (res.gpu_total_milli / MAX_SPEC_GPU)
        return np.where(cpu_left < res.cpu, 0.0, np.trunc(100.0 * (1.0 - d / 2.0)))

    def score(self, ctx: EvalContext) -> np.ndarray:
        return self.raw(ctx) / 100.0
