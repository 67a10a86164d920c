"""``corral sim colocate``'s files: the summary as JSON, usage over time as CSV, and one PNG (per cell,
over time: CPU — online demand, online and batch used, batch on reclaimed room, the limits and the
master's reservations of the tasks, the busy machines' CPU; memory — used, limits, reservations, the
busy machines' memory)."""

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

    fig, axes = plt.subplots(len(runs), 2, figsize=(14, 2.8 * len(runs)), sharex=True, squeeze=False)
    unit = "seconds"
    col = {name: i for i, name in enumerate(SERIES)}
    for (ax, mem), run in zip(axes, runs):
        t, unit = _axes_time([(row[0],) for row in run.series])
        series = lambda name, scale=1000: [row[col[name]] / scale for row in run.series]  # noqa: E731
        ax.plot(t, series("busy_cpu"), color="black", linewidth=1.0, label="CPU of busy machines")
        ax.stackplot(t, series("ls_got"), series("batch_got"), labels=("online used", "batch used"), alpha=0.6)
        ax.plot(t, series("batch_reclaimed_got"), color="tab:green", linewidth=0.8, label="batch on reclaimed room")
        ax.plot(t, series("ls_demand"), color="tab:red", linewidth=0.8, linestyle="--", label="online demand")
        ax.plot(t, series("limits_cpu"), color="tab:purple", linewidth=0.8, label="limits")
        ax.plot(t, series("reserved_cpu"), color="tab:brown", linewidth=0.8, linestyle=":", label="reservations")
        ax.set_ylabel("cores")
        ax.set_title(f"{run.name}: {int(max((r[1] for r in run.series), default=0))} machines at most, "
                     f"{run.evictions} evictions", fontsize=9)
        gib = 2**30
        mem.plot(t, series("busy_memory", gib), color="black", linewidth=1.0, label="memory of busy machines")
        mem.plot(t, series("limits_memory", gib), color="tab:purple", linewidth=0.8, label="limits")
        mem.plot(t, series("reserved_memory", gib), color="tab:brown", linewidth=0.8, linestyle=":",
                 label="reservations")
        mem.fill_between(t, series("used_memory", gib), alpha=0.4, label="used")
        mem.set_ylabel("GiB")
        mem.set_title(f"{run.name}: memory", fontsize=9)
        for a in (ax, mem):
            a.grid(alpha=0.3)
            a.legend(loc="upper right", fontsize=6, ncol=2)
    for a in axes[-1]:
        a.set_xlabel(f"simulated time ({unit})")
    layouts = summary["layouts"]
    fig.suptitle(f"{summary['trace']}: separate {layouts['separate']['machines_needed']} machines "
                 f"({layouts['separate']['avg_cpu_usage_pct']} % CPU) vs colocated "
                 f"{layouts['colocated']['machines_needed']} ({layouts['colocated']['avg_cpu_usage_pct']} %), "
                 f"seed {summary['seed']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
