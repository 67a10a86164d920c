"""Resources by band (reclamation, Borg §5.5): production against limits, the rest against reservations.

A production (or monitoring) task fits where its limit fits in what the limits
of the machine's tasks leave free: it never relies on reclaimed resources. A
non-production task also fits where its limit fits in the room reservations
leave (``capacity - reserved``): what running tasks asked for but are not
expected to use. Such a placement is *reclaimed* (it would not have fit against
limits; the scheduler marks it). With no reservation below its limit anywhere
in the view this is :class:`ResourcesFit`, at its cost.

The room of a hypothetical state: given by the caller (``EvalContext.room``,
preemption), or the view's room less what ``free`` says was placed since (the
what-if copies of one request, each reserving its limit), at most the capacity.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from corral.model.priority import Band, band_floor
from corral.model.resources import DIMS
from corral.sched.checkers.base import Checker
from corral.sched.checkers.resources import ResourcesFit
from corral.sched.context import EvalContext

PRODUCTION_FLOOR = band_floor(Band.PRODUCTION)


def against_limits(priority: int) -> bool:
    """Production and monitoring work is placed against limits only."""
    return priority >= PRODUCTION_FLOOR


def room_of(ctx: EvalContext) -> np.ndarray:
    """The reclaimable room of ``ctx``'s machines (rows of ``ctx.idx``), hypothetical as ``ctx`` is."""
    if ctx.room is not None:
        return ctx.room
    view = ctx.view
    room = view.reclaim_room(ctx.idx)
    if ctx.free is not None and ctx.free is not view.free:
        room = np.minimum(ctx.capacity, room - (view.free[ctx.idx] - ctx.free))
    return room


class ReclaimableFit(Checker):
    """Enough cpu, memory, disk and GPU: against limits for production, against reservations for the rest."""

    name = "resources"
    exhausts = True

    def __init__(self) -> None:
        self._limits = ResourcesFit()

    def _reclaims(self, ctx: EvalContext) -> bool:
        return not against_limits(ctx.req.priority) and (ctx.room is not None or ctx.view.reserving_below_limit > 0)

    def check(self, ctx: EvalContext) -> np.ndarray:
        fits = self._limits.check(ctx)
        if not self._reclaims(ctx) or fits.all():
            return fits
        return fits | np.logical_and.reduce(room_of(ctx) >= ctx.req.vector, axis=1)

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        if not self._reclaims(ctx):
            return self._limits.reasons(ctx, rejected)
        # The first dimension short of the larger of the two rooms.
        room = np.maximum(ctx.free[rejected], room_of(ctx)[rejected])
        first = (room < ctx.req.vector).argmax(axis=1)
        return Counter(f"insufficient {DIMS[d]}" for d in first)


def fits_against_limits(free: np.ndarray, vector: np.ndarray) -> int:
    """How many copies of ``vector`` fit in ``free`` (one machine's row) against limits."""
    need = vector > 0
    if not need.any():
        return 1 << 30
    return max(0, int((free[need] // vector[need]).min()))


def with_reclamation(checkers: list[Checker], on: bool) -> list[Checker]:
    """``checkers`` with their resources checker by band (``on``) or against limits only (off)."""
    out = []
    for checker in checkers:
        if on and type(checker) is ResourcesFit:
            checker = ReclaimableFit()
        elif not on and isinstance(checker, ReclaimableFit):
            checker = ResourcesFit()
        out.append(checker)
    return out
