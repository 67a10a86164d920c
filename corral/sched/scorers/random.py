"""Random: every feasible machine is as good as any other.

The score is a hash of the machine, its version and the scheduler's seed: it
is uniform over machines, reproducible for a seed, and stable until the
machine changes (so it can be cached like any other score).
"""

from __future__ import annotations

import numpy as np

from corral.sched.context import EvalContext
from corral.sched.scorers.base import Scorer

_MASK = np.uint64(2**64 - 1)


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: a good 64-bit hash, vectorised.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class RandomScore(Scorer):
    name = "random"
    predictable = False

    def __init__(self, seed: int = 0):
        self.seed = np.uint64(seed & 0xFFFFFFFF)

    def score(self, ctx: EvalContext) -> np.ndarray:
        key = ctx.idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        key ^= ctx.view.version[ctx.idx].astype(np.uint64) << np.uint64(32)
        key ^= self.seed
        with np.errstate(over="ignore"):
            return (_mix(key) >> np.uint64(11)).astype(np.float64) / float(2**53)
