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


class GpuModel(Checker):
    """The machine has GPUs, of a model the task accepts (a filter: waiting will not help)."""

    name = "gpu model"

    def applies(self, req: TaskRequest) -> bool:
        return req.gpu > 0

    def check(self, ctx: EvalContext) -> np.ndarray:
        return (ctx.view.gpu_count[ctx.idx] > 0) & model_ok(ctx)

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        has_gpu = ctx.view.gpu_count[ctx.idx] > 0
        out = Counter({"no GPU": int((rejected & ~has_gpu).sum())})
        if ctx.req.resources.gpu_models:
            out[f"GPU model not {'|'.join(ctx.req.resources.gpu_models)}"] = int((rejected & has_gpu).sum())
        return +out


class GpuFit(Checker):
    """Enough GPUs each with the task's share idle (exhaustion: may fit once others finish)."""

    name = "gpu"
    exhausts = True

    def applies(self, req: TaskRequest) -> bool:
        return req.gpu > 0

    def check(self, ctx: EvalContext) -> np.ndarray:
        return gpus_with_room(ctx) >= ctx.req.gpu

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        req = ctx.req
        what = f"no GPU with {req.gpu_milli}m idle" if req.gpu == 1 else f"fewer than {req.gpu} GPUs with {req.gpu_milli}m idle"
        return Counter({what: int(rejected.sum())})
