"""Borg §5.5, resource reclamation: how many machines does reclaiming reserved-but-unused resources save?

Borg schedules production work by its limits and lets non-production work
onto *reclaimed* resources: each task's reservation decays from its limit
towards its usage plus a safety margin, and non-production tasks are placed
against reservations. Here, as a static estimate on the checkpoint (no decay
over time, no usage peaks; the reservation is where the decay ends):

* without reclamation every task is packed at its limit;
* with reclamation production tasks (priority >= 9) are packed at their limit and
  non-production tasks at ``min(limit, ceil(usage * (1 + margin)))``, cpu and
  memory each, where the trace gives (or the loader estimated) a usage; a task
  with no usage keeps its limit.

Reported: the minimum cell both ways, the saving, and how much work runs on
reclaimed resources in the reclaimed packing: on each machine, what its tasks'
limits add up to beyond its capacity (cpu, memory), over the limits of all
the placed work, and over those of the placed non-production work (Borg: about
20 % of the workload runs on reclaimed resources in a median cell).
"""

from __future__ import annotations

import math
from dataclasses import replace

from corral.master.records import job_id
from corral.sim.experiments.checkpoint import Checkpoint
from corral.sim.experiments.search import Trial
from corral.sim.experiments.segregate import PROD_PRIORITY
from corral.sim.experiments.summary import cell_sizes, events, grown_notes, header, pct, unfit_notes
from corral.sim.experiments.trials import Progress, run_trials
from corral.sim.trace import TraceJob

MARGIN = 0.1  # the reservation's safety margin over usage


def reserve(limit: int, usage: int | None, margin: float = MARGIN) -> int:
    """Where a reservation decays to: usage plus the margin, never above the limit (no usage: the limit)."""
    if usage is None:
        return limit
    # Rounded first: 900 x 1.1 is 990.0000000000001 in floating point, and should reserve 990.
    return min(limit, math.ceil(round(usage * (1 + margin), 6)))


def reserved(job: TraceJob, margin: float = MARGIN) -> TraceJob:
    """``job`` as packed with reclamation: production at its limit, the rest at its reservation."""
    if job.priority >= PROD_PRIORITY:
        return job
    return replace(job, cpu=reserve(job.cpu, job.cpu_usage, margin),
                   memory=reserve(job.memory, job.memory_usage, margin))


def saving_pct(without: float | None, with_: float | None) -> float | None:
    """Machines saved by reclamation, in % of the cell needed without it."""
    if without is None or with_ is None:
        return None
    return pct(without - with_, without)


def reclaimed_shares(trial: Trial, limits: dict[str, TraceJob]) -> dict[str, float | None]:
    """Work on reclaimed resources in ``trial``'s packing, as % of placed work (cpu, memory; all, non-prod)."""
    beyond = [0, 0]
    placed = [0, 0]
    nonprod = [0, 0]
    for machine, jobs in trial.placement.items():
        on = [0, 0]
        for jid, count in jobs.items():
            job = limits[jid]
            for d, limit in enumerate((job.cpu, job.memory)):
                on[d] += limit * count
                placed[d] += limit * count
                if job.priority < PROD_PRIORITY:
                    nonprod[d] += limit * count
        for d, capacity in enumerate(trial.capacity[machine]):
            beyond[d] += max(0, on[d] - capacity)

    def share(part: int, whole: int) -> float | None:
        return round(100.0 * part / whole, 2) if whole else None

    return {"cpu_pct": share(beyond[0], placed[0]), "memory_pct": share(beyond[1], placed[1]),
            "cpu_pct_of_nonprod": share(beyond[0], nonprod[0]),
            "memory_pct_of_nonprod": share(beyond[1], nonprod[1])}


def usage_notes(jobs: list[TraceJob], margin: float) -> list[str]:
    nonprod = [j for j in jobs if j.priority < PROD_PRIORITY]
    tasks = sum(j.tasks for j in nonprod)
    cpu = sum(j.tasks for j in nonprod if j.cpu_usage is not None)
    memory = sum(j.tasks for j in nonprod if j.memory_usage is not None)
    notes = [f"reclaim: static estimate on the checkpoint, not reservations decaying over time: non-production "
             f"tasks reserve min(limit, usage x {1 + margin:g}); production tasks keep their limits",
             f"reclaim: usage known for {cpu} of {tasks} non-production tasks (cpu) and {memory} (memory); "
             "the others reserve their limit"]
    if nonprod and not cpu and not memory:
        notes.append("reclaim: the trace gives no usage, so reservation = limit and reclamation saves nothing here")
    return notes


def reclaim(cp: Checkpoint, policies: list[str], seeds: list[int], workers: int = 1,
            progress: Progress | None = None, margin: float = MARGIN) -> dict:
    forms = {"limit": cp.jobs, "reclaimed": [reserved(j, margin) for j in cp.jobs]}
    trials = run_trials(cp.machines, forms, policies, seeds, workers, progress, placement=("reclaimed",))
    limits = {job_id(j.name, j.user): j for j in cp.jobs}
    cell = len(cp.machines)
    result = header("reclaim", cp, policies, seeds)
    result["margin"] = margin
    result["policies"] = {}
    for p in policies:
        sizes = {w: cell_sizes(trials[(w, p)], cell) for w in forms}
        saving = [saving_pct(a.min_machines, b.min_machines)
                  for a, b in zip(trials[("limit", p)], trials[("reclaimed", p)])]
        shares = [reclaimed_shares(t, limits) for t in trials[("reclaimed", p)]]
        result["policies"][p] = {**sizes, "saving_pct": saving,
                                 "saving_pct_p90": saving_pct(sizes["limit"]["p90"], sizes["reclaimed"]["p90"]),
                                 "on_reclaimed": {k: [s[k] for s in shares] for k in shares[0]} if shares else {}}
    result["notes"] = (cp.notes + usage_notes(cp.jobs, margin) + grown_notes(trials, cell)
                       + unfit_notes(trials))
    result["events"] = events(trials)
    return result
