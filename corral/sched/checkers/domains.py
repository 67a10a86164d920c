"""Failure-domain limits: at most N tasks of the job per rack (or power domain)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from corral.sched.checkers.base import Checker
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest


def _under_limit(ctx: EvalContext, domain: str, limit: int) -> np.ndarray:
    counts = ctx.view.job_domain_counts(ctx.req.job, domain)
    return counts[ctx.view.attribute_codes(domain)[ctx.idx]] < limit


class DomainLimit(Checker):
    name = "failure-domain limit"
    resources_only = False  # reads what runs on the machine, not only free resources
    machine_local = False  # depends on where the job's other tasks are

    def applies(self, req: TaskRequest) -> bool:
        return bool(req.max_per_domain)

    def check(self, ctx: EvalContext) -> np.ndarray:
        mask = np.ones(len(ctx), dtype=bool)
        for domain, limit in ctx.req.max_per_domain:
            mask &= _under_limit(ctx, domain, limit)
        return mask

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        out: Counter = Counter()
        left = rejected.copy()
        for domain, limit in ctx.req.max_per_domain:
            failed = left & ~_under_limit(ctx, domain, limit)
            out[f"job already has {limit} task(s) in the {domain}"] = int(failed.sum())
            left &= ~failed
        return +out
