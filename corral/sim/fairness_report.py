"""``corral sim fairness``'s files: the summary as JSON, shares over time and per-user delays as CSV,
and one PNG (per order: the heaviest users' dominant shares over time; Jain's index over time)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from corral.sim.fairness import OrderRun
from corral.sim.report import _axes_time


def write_fairness(summary: dict[str, Any], runs: list[OrderRun], out: Path, stem: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out / f"{stem}.json", "shares": out / f"{stem}_shares.csv",
             "delays": out / f"{stem}_user_delays.csv", "plot": out / f"{stem}.png"}
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    with paths["shares"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("order", "t", "user", "dominant_share", "pending"))
        for run in runs:
            for t, shares, want in zip(run.times, run.shares, run.wanting):
                for user in sorted(set(shares) | want):
                    writer.writerow((run.order, t, user, round(shares.get(user, 0.0), 6), int(user in want)))
    with paths["delays"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("order", "user", "placements", "pending_delay_mean_s", "pending_delay_p90_s",
                         "share_mean", "share_peak"))
        for order, figures in summary["orders"].items():
            for user, row in figures["per_user"].items():
                writer.writerow((order, user, row["placements"], row["pending_delay_mean_s"],
                                 row["pending_delay_p90_s"], row["share_mean"], row["share_peak"]))
    plot_fairness(summary, runs, paths["plot"])
    return paths


def plot_fairness(summary: dict[str, Any], runs: list[OrderRun], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    users = summary["heaviest_users"]
    fig, axes = plt.subplots(len(runs) + 1, 1, figsize=(9, 3 * (len(runs) + 1)), sharex=True)
    for ax, run in zip(axes, runs):
        t, unit = _axes_time([(x,) for x in run.times])
        for user in users:
            ax.plot(t, [100 * s.get(user, 0.0) for s in run.shares], linewidth=1.0, label=user)
        ax.set_ylabel("dominant share %")
        ax.set_title(f"{run.order}: dominant share of the heaviest users")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=7, ncol=4)
    ax = axes[-1]
    for run in runs:
        t, unit = _axes_time([(x,) for x in run.times])
        series = run.jain_series()
        ax.plot([x for x, j in zip(t, series) if j is not None], [j for j in series if j is not None],
                linewidth=1.2, label=run.order)
    ax.set_ylabel("Jain's index")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"simulated time ({unit if runs else 'seconds'})")
    ax.set_title("Jain's index of the dominant shares of users with a task pending")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{summary['trace']}: fairness by queue order (seed {summary['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
