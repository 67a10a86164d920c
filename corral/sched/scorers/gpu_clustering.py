"""GPU clustering (PROTOCOL §6, GpuClusteringScore): keep tasks of the same GPU shape together.

A GPU task's *tag* is ``share-gpu`` (one GPU, share < 1000) or ``<k>-gpu``
(k whole GPUs). Integer score ``base = 25 (8000 - gpuLeft) // 8000``, plus 75
if the machine's GPU tasks all carry the task's tag, plus 50 if some do, plus
25 if the machine runs no GPU task. CPU-only tasks score 0 everywhere.
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import GPU
from corral.sched.cellview import CellView
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest
from corral.sched.scorers.base import Scorer

MAX_SPEC_GPU = 8_000


def gpu_tag(req: TaskRequest) -> str | None:
    if not req.gpu:
        return None
    return "share-gpu" if req.is_gpu_share else f"{req.gpu}-gpu"


class GpuClustering(Scorer):
    name = "gpu-clustering"

    def __init__(self) -> None:
        self._tags: dict[int, tuple[int, frozenset[str]]] = {}  # machine -> (version, tags of its GPU tasks)
        self._lineage: object = None

    def tags(self, view: CellView, machine: int) -> frozenset[str]:
        if self._lineage is not view.lineage:
            self._tags.clear()
            self._lineage = view.lineage
        version = int(view.version[machine])
        hit = self._tags.get(machine)
        if hit is None or hit[0] != version:
            tags = frozenset(t for t in (gpu_tag(task.request) for task in view.tasks[machine].values()) if t)
            hit = self._tags[machine] = (version, tags)
        return hit[1]

    def raw(self, ctx: EvalContext) -> np.ndarray:
        tag = gpu_tag(ctx.req)
        if tag is None:
            return np.zeros(len(ctx))
        base = 25 * (MAX_SPEC_GPU - ctx.free[:, GPU]) // MAX_SPEC_GPU
        bonus = np.empty(len(ctx), dtype=np.int64)
        for j, machine in enumerate(ctx.idx):
            tags = self.tags(ctx.view, int(machine))
            bonus[j] = (75 if len(tags) == 1 else 50) if tag in tags else (0 if tags else 25)
        return (base + bonus).astype(np.float64)

    def score(self, ctx: EvalContext) -> np.ndarray:
        return self.raw(ctx) / 100.0
