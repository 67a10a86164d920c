"""Priorities (0..11) and the bands they fall in (Borg §2.5)."""

from __future__ import annotations

from enum import Enum

MIN_PRIORITY, MAX_PRIORITY = 0, 11
NUM_PRIORITIES = MAX_PRIORITY + 1


class Band(str, Enum):
    BEST_EFFORT = "best-effort"  # 0-1
    BATCH = "batch"  # 2-8
    PRODUCTION = "production"  # 9-10
    MONITORING = "monitoring"  # 11


_BAND_FLOOR = {Band.BEST_EFFORT: 0, Band.BATCH: 2, Band.PRODUCTION: 9, Band.MONITORING: 11}
BANDS_HIGH_TO_LOW: tuple[Band, ...] = (Band.MONITORING, Band.PRODUCTION, Band.BATCH, Band.BEST_EFFORT)


def band_of(priority: int) -> Band:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be in {MIN_PRIORITY}..{MAX_PRIORITY}, got {priority}")
    if priority >= 11:
        return Band.MONITORING
    if priority >= 9:
        return Band.PRODUCTION
    if priority >= 2:
        return Band.BATCH
    return Band.BEST_EFFORT


def band_floor(band: Band) -> int:
    return _BAND_FLOOR[band]


def preemptible_below(priority: int) -> int:
    """Tasks with priority strictly below the returned value may be preempted by ``priority``.

    A task preempts only lower priorities; production never preempts
    production (a production task may evict batch and best-effort work only);
    best-effort work is opportunistic and preempts nothing.
    """
    band = band_of(priority)
    if band is Band.PRODUCTION:
        return band_floor(Band.PRODUCTION)
    if band is Band.BEST_EFFORT:
        return 0
    return priority


def is_production(priority: int) -> bool:
    return band_of(priority) is Band.PRODUCTION
