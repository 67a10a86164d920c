"""corral's openb policy (experimental)."""

from __future__ import annotations

import os

import numpy as np

from corral.model.resources import CPU, GPU
from corral.sched.context import EvalContext
from corral.sched.policy import Policy
from corral.sched.scorers.base import Scorer
from corral.sched.scorers.fgd import FGDScore, TypicalPods, share_frag_after, take_gpus, node_frag
from corral.sched.gpus import select_gpus_best

P = {k: float(v) for k, v in (x.split("=") for x in os.environ.get("LA", "").split(",") if x)}


class FragLookahead(FGDScore):
    name = "fgd-lookahead"

    def deltas(self, ctx):
        req = ctx.req
        access = self.access(ctx.view)[ctx.idx]
        cpu_left = ctx.free[:, CPU]
        idle = ctx.gpu_idle
        if req.is_gpu_share:
            now, after = share_frag_after(cpu_left, idle, access, self.typical, req.resources.cpu, req.gpu_milli)
            d = after - now[:, None]
            d = np.where(idle >= req.gpu_milli, d, np.inf)
            return d  # (n, G)
        after_idle = take_gpus(idle, req.gpu_milli, req.gpu) if req.gpu else idle
        now = node_frag(cpu_left, idle, access, self.typical)
        after = node_frag(cpu_left - req.resources.cpu, after_idle, access, self.typical)
        return (after - now)[:, None]

    def score(self, ctx):
        d = self.deltas(ctx).min(axis=1)  # frag growth, milli
        if P.get("trunc"):
            s = np.trunc(100.0 / (1.0 + np.exp(d / 1000.0)))
        else:
            s = -d / 8000.0
        w = P.get("pack", 0.0)
        if w:
            res = ctx.req.resources
            gl = (ctx.free[:, GPU] - res.gpu_total_milli) / 8000.0
            cl = (ctx.free[:, CPU] - res.cpu) / 128000.0
            s = s - w * (0.5 * gl + 0.5 * cl)
        return s

    def share_scores(self, ctx):
        d = self.deltas(ctx)
        return np.where(np.isfinite(d), -d, -np.inf)


def select(scorer):
    def f(view, machine, req):
        if not req.is_gpu_share:
            return select_gpus_best(view, machine, req)
        sc = scorer.share_scores(EvalContext(view, req, np.array([machine])))[0]
        return (int(np.argmax(sc)),)
    return f


def lookahead_policy(typical: TypicalPods) -> Policy:
    s = FragLookahead(typical)
    return Policy("fgd-lookahead", [(s, 1.0)], select_gpus=select(s))
