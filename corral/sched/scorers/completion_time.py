"""Apollo's completion-time scorer: batch work prefers the machine where it would finish soonest.

``completion(req, machine) -> seconds`` is handed in (the master builds it from
corral.sched.estimates' CompletionModel: wait + (start-up + runtime) / (1 - p);
one with a ``many(req, machines) -> [seconds]`` is asked once per pass);
the score is ``1 / (1 + completion / scale)``: 1 for "at once", falling with
time, 0 for never (inf). Only batch requests are scored (service work is placed
for where it lives, not when it ends). Without a ``completion`` every machine
scores the same (nothing is known: no preference). Not machine-local: the
estimate depends on what the master knows, not on the view's version.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from corral.model.job import AppClass
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest
from corral.sched.scorers.base import Scorer

Completion = Callable[[TaskRequest, str], float]


class CompletionTime(Scorer):
    name = "completion-time"
    machine_local = False

    def __init__(self, completion: Completion | None = None, scale_s: float = 60.0):
        self.completion, self.scale_s = completion, scale_s

    def applies(self, req: TaskRequest) -> bool:
        return req.appclass is AppClass.BATCH

    def score(self, ctx: EvalContext) -> np.ndarray:
        if self.completion is None:
            return np.full(len(ctx.idx), 0.5)
        names = ctx.view.names
        many = getattr(self.completion, "many", None)  # one request on every candidate at once, where offered
        if many is not None:
            seconds = np.array(many(ctx.req, [names[i] for i in ctx.idx]), dtype=float)
        else:
            seconds = np.array([self.completion(ctx.req, names[i]) for i in ctx.idx], dtype=float)
        out = np.zeros(len(seconds))
        finite = np.isfinite(seconds)
        out[finite] = 1.0 / (1.0 + np.maximum(seconds[finite], 0.0) / self.scale_s)
        return out


