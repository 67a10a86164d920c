"""Host ports the task needs must be free on the machine."""

from __future__ import annotations

from collections import Counter

import numpy as np

from corral.sched.checkers.base import Checker
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest


class PortsFree(Checker):
    name = "ports"
    resources_only = False  # reads what runs on the machine, not only free resources

    def applies(self, req: TaskRequest) -> bool:
        return bool(req.resources.ports)

    def check(self, ctx: EvalContext) -> np.ndarray:
        wanted = set(ctx.req.resources.ports)
        used = ctx.view.ports
        return np.fromiter((not (used[m] & wanted) for m in ctx.idx), dtype=bool, count=len(ctx))

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        wanted = sorted(ctx.req.resources.ports)
        used = ctx.view.ports
        return Counter(
            f"port {next(p for p in wanted if p in used[m])} in use" for m in ctx.idx[rejected]
        )
