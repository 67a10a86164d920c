"""A replay's outputs: the summary as JSON, the time series and delays as CSV, and two plots
(utilization over time; CDF of pending delay), written side by side in one folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from corral.sim.metrics import SAMPLE_COLUMNS
from corral.sim.plotting import axis_top, have_matplotlib
from corral.sim.replay import ReplayResult


def write_replay(result: ReplayResult, out: Path, stem: str) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>_samples.csv``, ``<stem>_delays.csv``, ``<stem>_rounds.csv``,
    ``<stem>_utilization.png`` and ``<stem>_pending_delay.png`` into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"{stem}{suffix}" for kind, suffix in (
        ("summary", ".json"), ("samples", "_samples.csv"), ("delays", "_delays.csv"), ("rounds", "_rounds.csv"),
        ("utilization", "_utilization.png"), ("pending_delay", "_pending_delay.png"))}
    paths["summary"].write_text(json.dumps(result.summary, indent=2) + "\n")
    _csv(paths["samples"], SAMPLE_COLUMNS, result.samples)
    _csv(paths["delays"], ("pending_delay_s",), [(d,) for d in result.delays])
    _csv(paths["rounds"], ("round", "wall_seconds"), list(enumerate(result.round_seconds)))
    if not have_matplotlib():  # corral without its [sim] extra: the data, and no pictures
        del paths["utilization"], paths["pending_delay"]
        return paths
    plot_utilization(result.samples, paths["utilization"], result.summary)
    plot_delay_cdf(result.delays, paths["pending_delay"], result.summary)
    return paths


def _csv(path: Path, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _axes_time(samples: list[tuple[float, ...]]) -> tuple[np.ndarray, str]:
    t = np.array([row[0] for row in samples]) if samples else np.zeros(0)
    span = t.max() if len(t) else 0.0
    for unit, seconds in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if span >= 3 * seconds:
            return t / seconds, unit
    return t, "seconds"


def plot_utilization(samples: list[tuple[float, ...]], path: Path, summary: dict[str, Any]) -> tuple[float, float]:
    """Draw allocation and usage over time into ``path``; return the value axis' range (percent)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = np.array(samples) if samples else np.zeros((0, len(SAMPLE_COLUMNS)))
    t, unit = _axes_time(samples)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    styles = (("alloc_cpu", "CPU allocated", "-"), ("alloc_memory", "memory allocated", "-"),
              ("alloc_gpu", "GPU allocated", "-"), ("usage_cpu", "CPU used", "--"), ("usage_memory", "memory used", "--"))
    peak = 0.0
    for column, label, style in styles:
        values = table[:, SAMPLE_COLUMNS.index(column)] if len(table) else np.zeros(0)
        if len(values) and values.max() > 0:
            ax.plot(t, 100 * values, style, label=label, linewidth=1.2)
            peak = max(peak, 100 * float(values.max()))
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("% of the cell")
    ax.set_ylim(0, min(105.0, axis_top(peak)))  # the data's range: 0-1 % is not drawn on a 0-100 % axis
    if len(t):
        ax.set_xlim(float(t.min()), float(t.max()) if t.max() > t.min() else float(t.min()) + 1)
    ax.set_title(f"{summary.get('trace')} / {summary.get('policy')}: allocation and usage over time")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return (0.0, min(105.0, axis_top(peak)))


def plot_delay_cdf(delays: list[float], path: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    if delays:
        values = np.sort(np.array(delays))
        ax.plot(values, np.arange(1, len(values) + 1) / len(values), linewidth=1.5)
        positive = values[values > 0]
        if len(positive) and positive.max() / max(positive.min(), 1e-9) > 100:
            ax.set_xscale("log")
    ax.set_xlabel("pending delay (simulated seconds)")
    ax.set_ylabel("fraction of placements")
    ax.set_ylim(0, 1.01)
    ax.set_title(f"{summary.get('trace')} / {summary.get('policy')}: CDF of pending delay")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
