"""``corral sim colocate``'s files: the summary as JSON, usage over time as CSV, and one PNG (per cell:
online demand, online and batch CPU used, and the CPU of the busy machines, over time)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from corral.sim.experiments.colocate import SERIES, CellRun
from corral.sim.plotting import have_matplotlib
from corral.sim.report import _axes_time


def write_colocate(summary: dict[str, Any], runs: list[CellRun], out: Path, stem: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out / f"{stem}.json", "usage": out / f"{stem}_usage.csv", "plot": out / f"{stem}.png"}
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    with paths["usage"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("cell", *SERIES))
        for run in runs:
            for row in run.series:
                writer.writerow((run.name, *(round(v, 3) for v in row)))
    if not have_matplotlib():
        del paths["plot"]
        return paths
    plot_colocate(summary, runs, paths["plot"])
    return paths


def plot_colocate(summary: dict[str, Any], runs: list[CellRun], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 2.8 * len(runs)), sharex=True)
    unit = "seconds"
    for ax, run in zip(axes, runs):
        t, unit = _axes_time([(row[0],) for row in run.series])
        cores = lambda i: [row[i] / 1000 for row in run.series]  # noqa: E731 - one column in cores
        ax.plot(t, cores(2), color="black", linewidth=1.0, label="CPU of busy machines")
        ax.stackplot(t, cores(4), cores(6), labels=("online used", "batch used"), alpha=0.6)
        ax.plot(t, cores(3), color="tab:red", linewidth=0.8, linestyle="--", label="online demand")
        ax.set_ylabel("cores")
        ax.set_title(f"{run.name}: {int(max((r[1] for r in run.series), default=0))} machines at most")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    axes[-1].set_xlabel(f"simulated time ({unit})")
    layouts = summary["layouts"]
    fig.suptitle(f"{summary['trace']}: separate {layouts['separate']['machines_needed']} machines "
                 f"({layouts['separate']['avg_cpu_usage_pct']} % CPU) vs colocated "
                 f"{layouts['colocated']['machines_needed']} ({layouts['colocated']['avg_cpu_usage_pct']} %), "
                 f"seed {summary['seed']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
