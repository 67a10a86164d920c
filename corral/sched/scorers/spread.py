"""Spread a job across failure domains: prefer racks holding fewer of its tasks."""

from __future__ import annotations

import numpy as np

from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest
from corral.sched.scorers.base import Scorer


class DomainSpread(Scorer):
    name = "spread"
    machine_local = False  # moves whenever the job places a task anywhere in the domain

    def applies(self, req: TaskRequest) -> bool:
        return req.spread is not None

    def score(self, ctx: EvalContext) -> np.ndarray:
        domain = ctx.req.spread
        counts = ctx.view.job_domain_counts(ctx.req.job, domain)
        here = counts[ctx.view.attribute_codes(domain)[ctx.idx]]
        return 1.0 / (1.0 + here)
