"""A small dense simplex (maximise ``c·x`` subject to ``A x <= b``, ``x >= 0``, ``b >= 0``) and a
certified upper bound from its dual.

Dantzig's rule, with Bland's (lowest index enters, lowest basic index leaves on ties) after
a run of degenerate pivots, so it does not cycle. The
bound does not rest on the simplex being right: :func:`certified_bound` takes the dual prices
the final tableau gives, makes them dual feasible (``y >= 0`` and ``Aᵀy >= c``, raising the
prices of the caller's ``fix_rows`` where a column is short, which any row with coefficient 1
in that column can absorb), and returns ``b·y``: by weak duality no ``x`` feasible for the
primal is worth more. NumPy only.
"""

from __future__ import annotations

import numpy as np


class LPError(RuntimeError):
    pass


def simplex_max(c: np.ndarray, A: np.ndarray, b: np.ndarray, max_pivots: int = 100_000, eps: float = 1e-9):
    """(value, x, y): the optimum, a primal optimum and the dual prices of the rows."""
    m, n = A.shape
    if (b < 0).any():
        raise LPError("b must be >= 0 (the origin must be feasible)")
    t = np.zeros((m + 1, n + m + 1))
    t[:m, :n], t[:m, n:n + m], t[:m, -1], t[m, :n] = A, np.eye(m), b, -c
    basis = np.arange(n, n + m)
    stalled, last = 0, -1.0
    for _ in range(max_pivots):
        reduced = t[m, :-1]
        entering = np.flatnonzero(reduced < -eps)
        if not len(entering):
            break
        # Dantzig's rule (steepest reduced cost) while the value grows; Bland's (lowest index)
        # after a run of degenerate pivots, which cannot cycle.
        stalled = stalled + 1 if t[m, -1] <= last + eps else 0
        last = t[m, -1]
        j = int(entering[0]) if stalled > 20 else int(np.argmin(reduced))
        col = t[:m, j]
        rows = np.flatnonzero(col > eps)
        if not len(rows):
            raise LPError("unbounded")
        ratios = t[rows, -1] / col[rows]
        best = rows[ratios <= ratios.min() + eps]
        i = int(best[np.argmin(basis[best])])
        t[i] /= t[i, j]
        others = np.arange(m + 1) != i
        t[others] -= np.outer(t[others, j], t[i])
        basis[i] = j
    else:
        raise LPError("too many pivots")
    x = np.zeros(n + m)
    x[basis] = t[:m, -1]
    return float(t[m, -1]), x[:n], t[m, n:n + m].copy()


def certified_bound(c: np.ndarray, A: np.ndarray, b: np.ndarray, y: np.ndarray, fix_rows: np.ndarray) -> float:
    """``b·y`` for ``y`` made dual feasible. ``fix_rows[j]``: a row whose coefficient in column j
    is positive; raising its price covers any shortfall of column j."""
    y = np.maximum(y, 0.0)
    short = c - A.T @ y
    for j in np.flatnonzero(short > 0):
        r = fix_rows[j]
        y[r] += short[j] / A[r, j]
    assert (A.T @ y >= c - 1e-9 * (1 + np.abs(c))).all()
    return float(b @ y)
