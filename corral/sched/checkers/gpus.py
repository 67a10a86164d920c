"""GPUs: the model the task accepts, and enough GPUs each with the task's share idle."""

from __future__ import annotations

from collections import Counter

import numpy as np

from corral.sched.checkers.base import Checker
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest


def model_ok(ctx: EvalContext) -> np.ndarray:
    models = ctx.req.resources.gpu_models
    if not models:
        return np.ones(len(ctx), dtype=bool)
    codes = [ctx.view.gpu_models.code(m) for m in models]
    return np.isin(ctx.view.gpu_model[ctx.idx], codes)


def gpus_with_room(ctx: EvalContext) -> np.ndarray:
    """How many GPUs of each machine have at least the task's share idle."""
    return (ctx.gpu_idle >= ctx.req.gpu_milli).sum(axis=1)


class GpuFit(Checker):
    name = "gpu"

    def applies(self, req: TaskRequest) -> bool:
        return req.gpu > 0

    def check(self, ctx: EvalContext) -> np.ndarray:
        return model_ok(ctx) & (gpus_with_room(ctx) >= ctx.req.gpu)

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        req = ctx.req
        has_gpu = ctx.view.gpu_count[ctx.idx] > 0
        model = model_ok(ctx)
        room = gpus_with_room(ctx) >= req.gpu
        out: Counter = Counter()
        out["no GPU"] = int((rejected & ~has_gpu).sum())
        if req.resources.gpu_models:
            out[f"GPU model not {'|'.join(req.resources.gpu_models)}"] = int((rejected & has_gpu & ~model).sum())
        what = f"no GPU with {req.gpu_milli}m idle" if req.gpu == 1 else f"fewer than {req.gpu} GPUs with {req.gpu_milli}m idle"
        out[what] = int((rejected & has_gpu & model & ~room).sum())
        return +out
