"""The allocation curve (PROTOCOL §10): per arrived-% bucket, the mean allocation ratio.

In: per pod event (placed or failed, in order) the cumulative arrived GPU
milli ``A`` and the allocated GPU milli ``U``, and the cluster's GPU count.
Out: ``{x: value}`` for x = 0..130, exactly as the artifact's scripts compute
it: ``arrive = round(A/T/10)`` (Python round, half-even), ``alloc =
round(U/T/10, 2)``; bucket x = events with ``arrive == x``, else those with
``x-1 <= arrive <= x+1``, else no value; the bucket mean is rounded to 2
decimals by NumPy (half-even on ``v*100``). Fragmentation ratio buckets are
averaged the same way but not rounded.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

COLUMNS = range(0, 131)


def arrive_ratio(arrived: Sequence[int], total_gpus: int) -> np.ndarray:
    return np.array([round(a / total_gpus / 10, 0) for a in arrived])


def alloc_ratio(used: Sequence[int], total_gpus: int) -> np.ndarray:
    return np.array([round(u / total_gpus / 10, 2) for u in used])


def bucket_rows(arrive: np.ndarray, x: int) -> np.ndarray:
    rows = np.flatnonzero(arrive == x)
    if not len(rows):
        rows = np.flatnonzero((arrive >= x - 1) & (arrive <= x + 1))
    return rows


def pandas_mean(values: np.ndarray) -> float:
    """Mean as pandas computes it for a float column (NumPy pairwise sum / n)."""
    return float(np.add.reduce(values) / len(values))


def allocation_curve(arrived: Sequence[int], used: Sequence[int], total_gpus: int,
                     columns=COLUMNS) -> dict[int, float | None]:
    arrive = arrive_ratio(arrived, total_gpus)
    alloc = alloc_ratio(used, total_gpus)
    out: dict[int, float | None] = {}
    for x in columns:
        rows = bucket_rows(arrive, x)
        out[x] = float(np.round(np.float64(pandas_mean(alloc[rows])), 2)) if len(rows) else None
    return out


def bucket_mean(arrived: Sequence[int], values: Sequence[float], total_gpus: int, x: int) -> float | None:
    """Unrounded mean of ``values`` over bucket x (NaN entries must not fall in the bucket)."""
    arrive = arrive_ratio(arrived, total_gpus)
    rows = bucket_rows(arrive, x)
    return pandas_mean(np.asarray(values, dtype=np.float64)[rows]) if len(rows) else None
