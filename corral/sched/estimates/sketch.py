"""Streaming statistics of task runtimes: a running mean and a quantile sketch.

:class:`QuantileSketch` is a DDSketch (Masson et al., VLDB'19): values go into
logarithmic buckets ``(γ^(i-1), γ^i]`` with ``γ = (1 + α) / (1 - α)``, and a
quantile answers the bucket's midpoint in the relative sense ``2γ^i / (γ + 1)``.
The bound: for the value ``x`` of rank ``⌊q·(n-1)⌋`` among the sorted values
(what :func:`exact_quantile` gives), the answer ``x̂`` has ``|x̂ - x| ≤ α·x``;
values at or below ``min_value`` share one bucket answered as ``min_value``
(absolute error at most ``min_value`` there). It is deterministic and its size
is bounded by the spread of the values, not their count: ``max_buckets`` caps it
by folding the lowest buckets together (the bound then holds only for quantiles
above the folded ones, which for runtimes are the uninteresting shortest tasks).
"""

from __future__ import annotations

import math
from typing import Sequence


class RunningMean:
    """Count, mean and variance of a stream (Welford), O(1) memory."""

    __slots__ = ("n", "mean", "_m2")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self._m2 = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self._m2 += delta * (x - self.mean)

    @property
    def variance(self) -> float:
        return self._m2 / (self.n - 1) if self.n > 1 else 0.0

    def to_list(self) -> list[float]:
        """``[n, mean, m2]``: what a checkpoint keeps (floats round-trip exactly through JSON)."""
        return [self.n, self.mean, self._m2]

    @classmethod
    def from_list(cls, values: list[float]) -> "RunningMean":
        out = cls()
        out.n, out.mean, out._m2 = int(values[0]), float(values[1]), float(values[2])
        return out

    def merge(self, other: "RunningMean") -> None:
        if other.n == 0:
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self._m2 += other._m2 + delta * delta * self.n * other.n / n
        self.mean += delta * other.n / n
        self.n = n


class QuantileSketch:
    """Quantiles of a stream of non-negative values within relative error ``alpha``."""

    __slots__ = ("alpha", "min_value", "max_buckets", "_gamma", "_log_gamma", "_buckets", "_low", "n")

    def __init__(self, alpha: float = 0.01, min_value: float = 1e-3, max_buckets: int = 2048):
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"expected 0 < alpha < 1, got {alpha}")
        self.alpha = alpha
        self.min_value = min_value
        self.max_buckets = max_buckets
        self._gamma = (1.0 + alpha) / (1.0 - alpha)
        self._log_gamma = math.log(self._gamma)
        self._buckets: dict[int, int] = {}
        self._low = 0  # values <= min_value
        self.n = 0

    def _key(self, x: float) -> int:
        return math.ceil(math.log(x) / self._log_gamma)

    def add(self, x: float) -> None:
        if x < 0 or math.isnan(x):
            raise ValueError(f"expected a value >= 0, got {x}")
        self.n += 1
        if x <= self.min_value:
            self._low += 1
            return
        key = self._key(x)
        self._buckets[key] = self._buckets.get(key, 0) + 1
        if len(self._buckets) > self.max_buckets:  # fold the two lowest buckets into one
            keys = sorted(self._buckets)
            self._buckets[keys[1]] += self._buckets.pop(keys[0])

    def to_dict(self) -> dict:
        """Its parameters and counts, buckets in key order (a checkpoint's deterministic form)."""
        return {"alpha": self.alpha, "min_value": self.min_value, "max_buckets": self.max_buckets, "n": self.n,
                "low": self._low, "buckets": [[k, c] for k, c in sorted(self._buckets.items())]}

    @classmethod
    def from_dict(cls, d: dict) -> "QuantileSketch":
        out = cls(d["alpha"], d["min_value"], d["max_buckets"])
        out.n, out._low = int(d["n"]), int(d["low"])
        out._buckets = {int(k): int(c) for k, c in d["buckets"]}
        return out

    def merge(self, other: "QuantileSketch") -> None:
        if other._gamma != self._gamma or other.min_value != self.min_value:
            raise ValueError("only sketches of the same alpha and min_value merge")
        self.n += other.n
        self._low += other._low
        for key, count in other._buckets.items():
            self._buckets[key] = self._buckets.get(key, 0) + count

    def quantile(self, q: float) -> float:
        """The value at quantile ``q`` (0 ≤ q ≤ 1), within ``alpha`` of the exact one; nan when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"expected 0 <= q <= 1, got {q}")
        if self.n == 0:
            return math.nan
        rank = math.floor(q * (self.n - 1))
        seen = self._low
        if rank < seen:
            return self.min_value
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if rank < seen:
                return 2.0 * self._gamma ** key / (self._gamma + 1.0)
        raise AssertionError("counts and n disagree")  # unreachable: the buckets hold n - low values


def exact_quantile(values: Sequence[float], q: float) -> float:
    """The value of rank ``⌊q·(n-1)⌋`` in sorted order: what :meth:`QuantileSketch.quantile` approximates."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]
