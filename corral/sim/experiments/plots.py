"""PNG figures of the experiments' results (matplotlib's Agg canvas; no pyplot, no global backend).

compaction: per policy, each trial's minimum cell size (% of the trace's cell)
with the 90th percentile marked. segregate / buckets / reclaim: per policy,
the two configurations' p90 cell sizes side by side (segregated: production
stacked on non-production).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# The two configurations each comparison draws: (label, workload key) for the base and the other.
PAIRS = {
    "buckets": (("original", "original"), ("powers of two", "bucketed")),
    "reclaim": (("at limits", "limit"), ("with reclamation", "reclaimed")),
}


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110)
    return path


def _title(result: dict, what: str) -> str:
    return (f"{what}: {result['trace']} at t={result['at']:g} s, {result['tasks']} tasks, "
            f"{result['machines']} machines, {len(result['seeds'])} trials")


def plot_compaction(result: dict, path: Path) -> Path:
    policies = list(result["policies"])
    fig = Figure(figsize=(max(6.5, 1.6 * len(policies) + 2), 4.5))
    ax = fig.add_subplot()
    cell = result["machines"]
    for x, p in enumerate(policies):
        sizes = [s for s in result["policies"][p]["min_machines"] if s is not None]
        pcts = [100.0 * s / cell for s in sizes]
        # Spread the points evenly around their column: a deterministic "jitter".
        offsets = [(i - (len(pcts) - 1) / 2) * (0.5 / max(len(pcts), 1)) for i in range(len(pcts))]
        ax.scatter([x + o for o in offsets], sorted(pcts), s=18, alpha=0.75, label="trial" if x == 0 else None)
        p90 = result["policies"][p]["p90_pct"]
        if p90 is not None:
            ax.hlines(p90, x - 0.3, x + 0.3, colors="red", label="90th percentile" if x == 0 else None)
    ax.axhline(100, linestyle=":", color="gray", label="the trace's cell")
    ax.set_xticks(range(len(policies)), policies)
    ax.set_ylabel("minimum cell size (% of the trace's cell)")
    ax.set_title(_title(result, "compaction"), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_comparison(result: dict, path: Path) -> Path:
    """Two bars per policy: p90 cell size (% of the trace's cell) of the two configurations."""
    policies = list(result["policies"])
    fig = Figure(figsize=(max(6.5, 1.8 * len(policies) + 2), 4.5))
    ax = fig.add_subplot()
    width = 0.38
    xs = range(len(policies))

    def heights(key: str) -> list[float]:
        return [result["policies"][p][key]["p90_pct"] or 0.0 for p in policies]

    if result["experiment"] == "segregate":
        ax.bar_label(ax.bar([x - width / 2 for x in xs], heights("combined"), width, label="shared cell"), fmt="%.1f")
        prod, nonprod = heights("prod"), heights("nonprod")
        ax.bar([x + width / 2 for x in xs], prod, width, label="production cell")
        top = ax.bar([x + width / 2 for x in xs], nonprod, width, bottom=prod, label="non-production cell")
        ax.bar_label(top, labels=[f"{p + n:.1f}" for p, n in zip(prod, nonprod)])
    else:
        (base_label, base), (other_label, other) = PAIRS[result["experiment"]]
        ax.bar_label(ax.bar([x - width / 2 for x in xs], heights(base), width, label=base_label), fmt="%.1f")
        ax.bar_label(ax.bar([x + width / 2 for x in xs], heights(other), width, label=other_label), fmt="%.1f")
    ax.axhline(100, linestyle=":", color="gray", label="the trace's cell")
    ax.set_xticks(list(xs), policies)
    ax.set_ylabel("p90 minimum cell size (% of the trace's cell)")
    ax.set_title(_title(result, result["experiment"]), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot(result: dict, path: Path) -> Path:
    return plot_compaction(result, path) if result["experiment"] == "compaction" else plot_comparison(result, path)
