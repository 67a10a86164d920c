"""GPU packing (PROTOCOL §6, GpuPackingScore): fill partly used GPUs first, then partly used
machines, and open a fully idle machine last.

Integer score per machine: all GPUs idle -> ``max(33 - idle GPUs, idle GPUs)``;
else take the GPUs the task would get (smallest idle share that fits first):
if any was fully idle -> ``max(50 - those, 33)``; else ``max(100 - r // 10, 50)``
with ``r`` the sum of their idle share in percent. CPU-only tasks score 0.
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import GPU_MILLI_WHOLE
from corral.sched.context import EvalContext
from corral.sched.scorers.base import Scorer

_NO_ROOM = np.iinfo(np.int32).max


class GpuPacking(Scorer):
    name = "gpu-packing"

    def raw(self, ctx: EvalContext) -> np.ndarray:
        req = ctx.req
        if not req.gpu:
            return np.zeros(len(ctx))
        idle = ctx.gpu_idle.astype(np.int64)
        count = ctx.view.gpu_count[ctx.idx]
        whole = (idle == GPU_MILLI_WHOLE).sum(axis=1)
        key = np.where(idle >= req.gpu_milli, idle, _NO_ROOM)
        taken = np.sort(key, axis=1, kind="stable")[:, : req.gpu]  # stable sort by idle share
        valid = taken != _NO_ROOM
        used_whole = ((taken == GPU_MILLI_WHOLE) & valid).sum(axis=1)
        r = np.where(valid, taken * 100 // GPU_MILLI_WHOLE, 0).sum(axis=1)
        partial = np.where(used_whole > 0, np.maximum(50 - used_whole, 33), np.maximum(100 - r // 10, 50))
        return np.where(whole == count, np.maximum(33 - whole, whole), partial).astype(np.float64)

    def score(self, ctx: EvalContext) -> np.ndarray:
        return self.raw(ctx) / 100.0
