"""Numbers the experiments report, from the trials of a search.

Percentiles are NumPy's ``percentile(..., method="linear")``: with Borg's 11
trials the 90th percentile is exactly the 10th smallest of the 11 values.
Percentages are rounded to 0.01, other fractional figures to 0.001, so the
JSON reads well and compares equal between runs.
"""

from __future__ import annotations

import numpy as np

from corral.sim.experiments.checkpoint import Checkpoint
from corral.sim.experiments.search import ALLOWANCE, GROWTH_LIMIT, Trial, allowed_pending


def p90(values: list[float]) -> float | None:
    """The 90th percentile, or None if a value is missing (a trial that found no cell size)."""
    if not values or any(v is None for v in values):
        return None
    return round(float(np.percentile(values, 90, method="linear")), 3)


def pct(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 2)


def extra_pct(more: float | None, base: float | None) -> float | None:
    """How much larger ``more`` is than ``base``, in % of ``base``."""
    if more is None or base is None or not base:
        return None
    return round(100.0 * (more - base) / base, 2)


def cell_sizes(trials: list[Trial], cell: int) -> dict:
    """The minimum cell sizes of the trials, their p90 and mean, in machines and % of ``cell``."""
    sizes = [t.min_machines for t in trials]
    found = [s for s in sizes if s is not None]
    mean = round(float(np.mean(found)), 3) if found and len(found) == len(sizes) else None
    return {"min_machines": sizes, "p90": p90(sizes), "p90_pct": pct(p90(sizes), cell),
            "mean": mean, "mean_pct": pct(mean, cell), "pending": [t.pending for t in trials],
            "probes": [t.probes for t in trials]}


def header(experiment: str, cp: Checkpoint, policies: list[str], seeds: list[int]) -> dict:
    return {"experiment": experiment, "trace": cp.trace, "source": cp.source, "at": cp.at,
            "machines": len(cp.machines), "snapshot_tasks": cp.snapshot_tasks, "overflow_tasks": cp.overflow,
            "jobs": len(cp.jobs), "tasks": cp.tasks,
            "allowance": ALLOWANCE, "allowed_pending": allowed_pending(cp.tasks), "policies_run": list(policies),
            "seeds": list(seeds)}


def events(trials: dict[tuple[str, str], list[Trial]]) -> int:
    """Master events over every packing (a trial shared by identical workloads counts once)."""
    unique = {id(t): t for ts in trials.values() for t in ts}
    return sum(t.events for t in unique.values())


def unfit_notes(trials: dict[tuple[str, str], list[Trial]]) -> list[str]:
    """A note for each (workload, policy) with trials that found no cell size."""
    notes = []
    for (workload, policy), ts in trials.items():
        missed = [t.seed for t in ts if t.min_machines is None]
        if missed:
            notes.append(f"{workload} under {policy}: seeds {missed} found no cell that holds it, even grown by clones "
                         f"to {GROWTH_LIMIT} times the cell (or its capacity bound); their p90 is reported as null")
    return notes


def grown_notes(trials: dict[tuple[str, str], list[Trial]], cell: int) -> list[str]:
    """A note for each (workload, policy) that needed more machines than the cell has (clones)."""
    notes = []
    for (workload, policy), ts in trials.items():
        grown = [t.seed for t in ts if t.min_machines is not None and t.min_machines > cell]
        if grown:
            notes.append(f"{workload} under {policy}: seeds {grown} needed more than the cell's {cell} machines; "
                         "the cell was grown with clones of randomly chosen machines (as Borg did)")
    return notes
