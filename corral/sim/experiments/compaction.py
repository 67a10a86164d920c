"""Borg §5.1, cell compaction: how small a cell could the checkpoint's workload have run in?

Per policy and seed, the smallest prefix of a random machine order that holds
the workload with at most 0.2 % of its tasks pending (``search.py``); reported
per trial, and as the 90th percentile and mean over the trials, in machines and
as % of the trace's cell. Several policies run on the same seeds (the same
machine orders), so their numbers compare pair by pair.
"""

from __future__ import annotations

from corral.sim.experiments.checkpoint import Checkpoint
from corral.sim.experiments.summary import cell_sizes, events, grown_notes, header, unfit_notes
from corral.sim.experiments.trials import Progress, run_trials


def compaction(cp: Checkpoint, policies: list[str], seeds: list[int], workers: int = 1,
               progress: Progress | None = None) -> dict:
    trials = run_trials(cp.machines, {"snapshot": cp.jobs}, policies, seeds, workers, progress)
    cell = len(cp.machines)
    result = header("compaction", cp, policies, seeds)
    result["policies"] = {p: cell_sizes(trials[("snapshot", p)], cell) for p in policies}
    result["notes"] = cp.notes + grown_notes(trials, cell) + unfit_notes(trials)
    result["events"] = events(trials)
    return result
