"""Sigma's two placement water levels as scorers: stability first (spread) and utilisation first (pack).

A machine's *level* after placing the task is its fullest packing dimension:
the largest used fraction of cpu and memory (and GPU for GPU tasks) once the
task is on it (``1 - left_after``).

* :class:`StabilityFirst` keeps every machine at the lowest level: the score is
  ``1 - level``, so the task goes where the fullest dimension stays lowest
  (min-max water filling; unlike E-PVM's worst fit it does not trade a full
  dimension against an empty one).
* :class:`UtilisationFirst` fills machines to the highest level and keeps whole
  machines free for large work: a machine that already runs something scores
  ``0.5 + 0.5 * level``, an empty one ``0.49 * level``, so an empty machine is
  opened only when no busy machine can take the task.

Both are machine-local and predictable (cacheable per machine version).
"""

from __future__ import annotations

import numpy as np

from corral.model.placement import STABILITY_FIRST, UTILISATION_FIRST
from corral.sched.context import EvalContext
from corral.sched.scorers.base import Scorer, left_after, packing_dims


def level_after(ctx: EvalContext) -> np.ndarray:
    """Each machine's fullest packing dimension (a fraction) after placing the task on it."""
    return np.clip(1.0 - left_after(ctx), 0.0, 1.0).max(axis=1)


class StabilityFirst(Scorer):
    name = STABILITY_FIRST

    def score(self, ctx: EvalContext) -> np.ndarray:
        return 1.0 - level_after(ctx)


class UtilisationFirst(Scorer):
    name = UTILISATION_FIRST

    def score(self, ctx: EvalContext) -> np.ndarray:
        level = level_after(ctx)
        dims = packing_dims(ctx.req)
        empty = (ctx.free[:, dims] >= ctx.capacity[:, dims]).all(axis=1)
        return np.where(empty, 0.49 * level, 0.5 + 0.5 * level)
