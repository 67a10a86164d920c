"""The scorer interface and helpers shared by the packing policies."""

from __future__ import annotations

import numpy as np

from corral.model.resources import CPU, GPU, MEMORY
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest


class Scorer:
    """Ranks feasible machines for a task: ``score`` returns values in [0, 1], higher is better.

    Scores are absolute (not normalised across machines) so that a machine's
    score can be cached until that machine changes. ``machine_local`` is False
    when the score also depends on other machines (spreading), so it is
    recomputed on every evaluation instead. ``predictable`` is False when the
    score of a hypothetical state (``ctx.free``) is not the score the machine
    will have once in that state (a random draw per machine version).
    """

    name: str = "scorer"
    machine_local: bool = True
    predictable: bool = True

    def applies(self, req: TaskRequest) -> bool:
        return True

    def score(self, ctx: EvalContext) -> np.ndarray:
        raise NotImplementedError


_CPU_MEMORY = slice(CPU, MEMORY + 1)  # a slice, not a list: this is the hottest code in corral
_CPU_MEMORY_GPU = [CPU, MEMORY, GPU]


def packing_dims(req: TaskRequest) -> slice | list[int]:
    """Dimensions a packing score looks at: cpu and memory, and GPU for GPU tasks."""
    return _CPU_MEMORY_GPU if req.gpu else _CPU_MEMORY


def left_after(ctx: EvalContext) -> np.ndarray:
    """Fraction of each packing dimension left free after placing the task, shape (n, dims)."""
    dims = packing_dims(ctx.req)
    if dims is _CPU_MEMORY:  # one gather instead of two
        return (ctx.free[:, dims] - ctx.req.vector[dims]) * ctx.view.inverse_capacity[ctx.idx, dims]
    return (ctx.free[:, dims] - ctx.req.vector[dims]) * ctx.inverse_capacity[:, dims]
