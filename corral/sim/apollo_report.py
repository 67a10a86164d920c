"""``corral sim apollo``'s files: the summary as JSON, one row per variant as CSV, every job's completion
as CSV, and a CDF of job completion (one line per variant) as PNG."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from corral.sim.plotting import have_matplotlib

FIGURES = ("job_completion_p50_s", "job_completion_p90_s", "job_completion_p99_s", "task_wait_p50_s",
           "task_wait_p90_s", "extra_cpu_pct", "cpu_vs_baseline_pct", "corrections_triggered",
           "corrections_succeeded", "correction_success_rate", "speculative_copies", "queue_duplicates",
           "started_from_queue", "runtime_estimate_error_pct", "wait_estimate_error_pct", "jobs_succeeded",
           "stragglers", "core_s", "simulated_s", "seconds")


def variants_of(summary: dict[str, Any]) -> list[str]:
    from corral.sim.apollo import VARIANTS

    return [v for v in VARIANTS if v in summary]


def write_apollo(summary: dict[str, Any], completions: dict[str, list[float]], out: Path, stem: str,
                 csv_path: Path | None = None, plot_path: Path | None = None) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out / f"{stem}.json", "variants": csv_path or out / f"{stem}.csv",
             "completions": out / f"{stem}_jobs.csv", "plot": plot_path or out / f"{stem}.png"}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    with paths["variants"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("variant", *FIGURES))
        for name in variants_of(summary):
            writer.writerow((name, *("" if summary[name].get(k) is None else summary[name][k] for k in FIGURES)))
    with paths["completions"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("variant", "job_completion_s"))
        for name, values in completions.items():
            writer.writerows((name, round(v, 3)) for v in values)
    if not have_matplotlib():
        del paths["plot"]
    else:
        plot_cdf(completions, summary, paths["plot"])
    return paths


def plot_cdf(completions: dict[str, list[float]], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    # Wide solid lines under narrow dashed ones: variants that end the same (apollo on corrections'
    # line where nothing waits) stay visible.
    styles = {"baseline": ("-", 3.0), "estimates": ("--", 1.5), "corrections": ("-", 3.0), "apollo": ("--", 1.5)}
    for name, values in completions.items():
        if values:
            xs = np.sort(np.asarray(values))
            style, width = styles.get(name, ("-", 1.5))
            ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", label=name, linestyle=style,
                    linewidth=width)
    ax.set_xscale("log")
    ax.set_xlabel("job completion (s, log scale)")
    ax.set_ylabel("fraction of jobs")
    ax.set_ylim(0, 1.0)
    ax.axhline(0.9, color="grey", linewidth=0.5, linestyle=":")
    ax.set_title(f"Apollo on {summary['trace']}: {summary['jobs']:,} jobs, {summary['machines']} machines, "
                 f"stragglers {summary['stragglers']}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
