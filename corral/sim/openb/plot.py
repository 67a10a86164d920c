"""The allocation-curve figure, like the paper's: GPU allocation ratio vs arrived GPU request,
one panel per workload, one line per policy (mean over seeds), the artifact's FGD dashed.

Writes a PNG with matplotlib's Agg backend; never opens a window.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from corral.sim.openb.compare import group  # noqa: E402
from corral.sim.openb.expected import expected_alloc  # noqa: E402
from corral.sim.openb.experiment import RunResult  # noqa: E402

X_FROM = 50


def plot_curves(results: Sequence[RunResult], path: Path, trace_dir: Path | None = None) -> Path:
    by = group(results)
    workloads = sorted({w for w, _ in by})
    policies = list(dict.fromkeys(p for _, p in by))
    cols = min(4, len(workloads))
    rows = math.ceil(len(workloads) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    xs = list(range(X_FROM, 131))
    expected = {}
    if trace_dir is not None:
        try:
            expected = expected_alloc(trace_dir)
        except FileNotFoundError:
            expected = {}
    for ax, workload in zip(axes.flat, workloads):
        drawn: list[float] = []
        for policy in policies:
            runs = by.get((workload, policy))
            if not runs:
                continue
            ys = [np.mean([r.alloc[x] for r in runs if r.alloc.get(x) is not None] or [np.nan]) for x in xs]
            ax.plot(xs, ys, label=policy, lw=1.2)
            drawn += ys
        art = expected.get((workload, "06-FGD"))
        if art:
            ys = [np.mean(art[x]) if x in art else np.nan for x in xs]
            ax.plot(xs, ys, "k--", lw=0.8, label="FGD (artifact)")
            drawn += ys
        ax.set_title(workload, fontsize=9)
        ax.set_xlabel("arrived GPU request (% of capacity)", fontsize=7)
        ax.set_ylabel("GPU allocation (%)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_ylim(*_value_range(drawn))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _value_range(values: list[float]) -> tuple[float, float]:
    """The allocation axis from just below the lowest value drawn to just above the highest (within
    0-100 %): the curves fill the panel whatever range they cover."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return 0.0, 100.0
    low, high = min(finite), max(finite)
    pad = max(1.0, 0.05 * (high - low))
    return max(0.0, low - pad), min(100.0, high + pad)
