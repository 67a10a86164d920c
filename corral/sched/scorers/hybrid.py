"""Stranding-aware hybrid (Borg's choice): pack tightly, but do not strand resources.

A resource is *stranded* when another resource of the same machine is used
up: memory left on a machine with no cpu left cannot be used by anyone. The
score is half best fit (fullness after placement) and half balance (one
minus the spread between the most and least free dimension after placement),
so a placement that exhausts cpu while memory stays idle scores low.
"""

from __future__ import annotations

import numpy as np

from corral.sched.context import EvalContext
from corral.sched.scorers.base import Scorer, left_after

PACK_WEIGHT = 0.5


class StrandingHybrid(Scorer):
    name = "hybrid"

    def score(self, ctx: EvalContext) -> np.ndarray:
        left = left_after(ctx)
        if left.shape[1] == 2:
            # The same formula for cpu and memory alone, in fewer array operations (hot path).
            cpu, memory = left[:, 0], left[:, 1]
            return 1.0 - (PACK_WEIGHT / 2) * (cpu + memory) - (1.0 - PACK_WEIGHT) * np.abs(cpu - memory)
        fullness = 1.0 - np.add.reduce(left, axis=1) / left.shape[1]
        stranded = np.maximum.reduce(left, axis=1) - np.minimum.reduce(left, axis=1)
        return PACK_WEIGHT * fullness + (1.0 - PACK_WEIGHT) * (1.0 - stranded)
