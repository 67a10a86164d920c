"""``corral sim omega``'s files: the summary as JSON, one row per run and one per measured job as CSV,
and one PNG (batch wait p50/p90, busyness and conflict fraction against the service decision time,
both modes)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from corral.sim.omega_experiment import OmegaRun
from corral.sim.plotting import have_matplotlib

RUN_COLUMNS = ("mode", "service_decision_s", "batch_wait_p50_s", "batch_wait_p90_s", "batch_wait_mean_s",
               "batch_unplaced", "service_wait_p50_s", "service_wait_p90_s", "service_wait_mean_s",
               "service_unplaced", "conflict_fraction", "preemptions", "window_s", "end_s")


def write_omega(summary: dict[str, Any], runs: list[OmegaRun], out: Path, stem: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out / f"{stem}.json", "runs": out / f"{stem}.csv", "waits": out / f"{stem}_waits.csv",
             "plot": out / f"{stem}.png"}
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    with paths["runs"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow((*RUN_COLUMNS, "scheduler", "busyness", "transactions", "conflicted", "conflicts"))
        for figures in summary["runs"]:  # one row per scheduler of each run
            for name, counts in figures["schedulers"].items():
                writer.writerow((*(figures[c] for c in RUN_COLUMNS), name, figures["busyness"][name],
                                 counts["transactions"], counts["conflicted"], counts["conflicts"]))
    with paths["waits"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("mode", "service_decision_s", "job", "kind", "submitted_s", "wait_s"))
        for run in runs:
            for job, kind, submitted, wait in run.waits:
                writer.writerow((run.figures["mode"], run.figures["service_decision_s"], job, kind, submitted,
                                 "" if wait is None else round(wait, 6)))
    if not have_matplotlib():
        del paths["plot"]
        return paths
    plot_omega(summary, paths["plot"])
    return paths


def plot_omega(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (wait, busy, conflict) = plt.subplots(1, 3, figsize=(14, 4.2))
    styles = {"monolithic": ("tab:red", "o"), "shared": ("tab:blue", "s")}
    for mode, (colour, marker) in styles.items():
        rows = sorted((r for r in summary["results"] if r["mode"] == mode), key=lambda r: r["service_decision_s"])
        if not rows:
            continue
        x = [r["service_decision_s"] for r in rows]
        wait.plot(x, [r["batch_wait_p90_s"] for r in rows], color=colour, marker=marker, label=f"{mode} p90")
        wait.plot(x, [r["batch_wait_p50_s"] for r in rows], color=colour, marker=marker, linestyle="--",
                  alpha=0.7, label=f"{mode} p50")
        for name in rows[0]["busyness"]:
            busy.plot(x, [r["busyness"][name] for r in rows], color=colour, marker=marker,
                      linestyle="-" if name != "batch" else ":", label=f"{mode}: {name}")
        conflict.plot(x, [r["conflict_fraction"] for r in rows], color=colour, marker=marker, label=mode)
    for ax, title, label in ((wait, "batch job wait", "seconds (log)"), (busy, "scheduler busyness", "fraction"),
                             (conflict, "conflict fraction", "fraction of transactions")):
        ax.set_xscale("log")
        ax.set_xlabel("service decision time per job (s, simulated)")
        ax.set_ylabel(label)
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    wait.set_yscale("log")
    busy.set_ylim(0, 1.05)
    conflict.set_ylim(0, max([0.05] + [1.1 * r["conflict_fraction"] for r in summary["results"]]))
    fig.suptitle(f"Omega on {summary['trace']}: one scheduler vs two on shared state "
                 f"({summary['machines']} machines, {summary['policy']}, seed {summary['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
