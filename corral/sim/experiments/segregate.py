"""Borg §5.2, cell sharing: what would running production and non-production work in separate cells cost?

Per policy and seed, three compactions on the same machine order: the whole
checkpoint, its production part alone (priority >= 9: production and
monitoring bands) and its non-production part alone. The extra machines of
segregation are ``(prod + nonprod - combined) / combined``, per trial and from
the three 90th percentiles. Borg reports 20-30 % in the median cell.
"""

from __future__ import annotations

from corral.model.priority import Band, band_floor
from corral.sim.experiments.checkpoint import Checkpoint
from corral.sim.experiments.summary import cell_sizes, events, grown_notes, header, pct, unfit_notes
from corral.sim.experiments.trials import Progress, run_trials

PROD_PRIORITY = band_floor(Band.PRODUCTION)  # and above: monitoring counts as production too


def segregation_cost(prod: float | None, nonprod: float | None, combined: float | None) -> float | None:
    """Extra machines of separate cells, in % of the shared cell."""
    if prod is None or nonprod is None or not combined:
        return None
    return pct(prod + nonprod - combined, combined)


def segregate(cp: Checkpoint, policies: list[str], seeds: list[int], workers: int = 1,
              progress: Progress | None = None) -> dict:
    parts = {"combined": cp.jobs,
             "prod": [j for j in cp.jobs if j.priority >= PROD_PRIORITY],
             "nonprod": [j for j in cp.jobs if j.priority < PROD_PRIORITY]}
    trials = run_trials(cp.machines, parts, policies, seeds, workers, progress)
    cell = len(cp.machines)
    result = header("segregate", cp, policies, seeds)
    result["prod_tasks"] = sum(j.tasks for j in parts["prod"])
    result["nonprod_tasks"] = sum(j.tasks for j in parts["nonprod"])
    result["policies"] = {}
    for p in policies:
        sizes = {w: cell_sizes(trials[(w, p)], cell) for w in parts}
        per_trial = [segregation_cost(a.min_machines, b.min_machines, c.min_machines)
                     for a, b, c in zip(trials[("prod", p)], trials[("nonprod", p)], trials[("combined", p)])]
        result["policies"][p] = {**sizes, "extra_pct": per_trial,
                                 "extra_pct_p90": segregation_cost(sizes["prod"]["p90"], sizes["nonprod"]["p90"],
                                                                   sizes["combined"]["p90"])}
    notes = list(cp.notes)
    if not parts["prod"] or not parts["nonprod"]:
        notes.append("the checkpoint has no " + ("production" if not parts["prod"] else "non-production")
                     + " work: segregation cannot cost anything here")
    result["notes"] = notes + grown_notes(trials, cell) + unfit_notes(trials)
    result["events"] = events(trials)
    return result
