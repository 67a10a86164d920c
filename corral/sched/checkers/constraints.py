"""Hard constraints on machine attributes (``rack != r7``)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from corral.model.constraints import Constraint
from corral.sched.cellview import MISSING, CellView
from corral.sched.checkers.base import Checker
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest


def constraint_mask(view: CellView, constraint: Constraint, idx: np.ndarray) -> np.ndarray:
    codes = view.attribute_codes(constraint.attribute)[idx]
    op = constraint.op
    if op == "exists":
        return codes != MISSING
    if op == "not_exists":
        return codes == MISSING
    wanted = [view.value_code(constraint.attribute, v) for v in constraint.values]
    hit = codes == wanted[0] if len(wanted) == 1 else np.isin(codes, wanted)
    return hit if op in ("==", "in") else ~hit


class ConstraintsHold(Checker):
    name = "constraints"

    def applies(self, req: TaskRequest) -> bool:
        return bool(req.constraints)

    def check(self, ctx: EvalContext) -> np.ndarray:
        mask = np.ones(len(ctx), dtype=bool)
        for constraint in ctx.req.constraints:
            mask &= constraint_mask(ctx.view, constraint, ctx.idx)
        return mask

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        out: Counter = Counter()
        left = rejected.copy()
        for constraint in ctx.req.constraints:
            failed = left & ~constraint_mask(ctx.view, constraint, ctx.idx)
            out[f"constraint {constraint}"] = int(failed.sum())
            left &= ~failed
        return +out
