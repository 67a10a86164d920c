"""Borg §5.5, resource reclamation: how many machines does reclaiming reserved-but-unused resources save?

Borg schedules production work by its limits and lets non-production work
onto *reclaimed* resources: each task's reservation decays from its limit
towards its usage plus a safety margin, and non-production tasks are placed
against reservations. Here both packings of the checkpoint go through corral's
own master and scheduler:

* without reclamation every task is packed at its limit (no usage is reported,
  so every reservation stays at its limit);
* with reclamation the same workload is packed, then simulated time passes
  (reclaim_pack.py): agents report the trace's usage, the master's reservation
  estimator (corral/master/reservations.py, with ``margin``) decays the
  reservations, and the scheduler's ``ReclaimableFit`` places non-production
  tasks in the room they leave, marking them ``reclaimed``. A task with no
  usage in the trace reports its limit and reserves it.

Reported: the minimum cell both ways, the saving, and how much of the placed
work the master marked as placed in reclaimed room at the minimum cell: the
limits of those tasks (cpu, memory) over the limits of all the placed work, and
over those of the placed non-production work, and the share of tasks (Borg:
about 20 % of the workload runs on reclaimed resources in a median cell).
"""

from __future__ import annotations

from corral.master.records import job_id
from corral.master.reservations import ReservationPolicy
from corral.sim.experiments.checkpoint import Checkpoint
from corral.sim.experiments.reclaim_pack import MAX_CYCLES
from corral.sim.experiments.search import Trial
from corral.sim.experiments.segregate import PROD_PRIORITY
from corral.sim.experiments.summary import cell_sizes, events, grown_notes, header, pct, unfit_notes
from corral.sim.experiments.trials import Progress, run_trials
from corral.sim.trace import TraceJob

MARGIN = 0.1  # the reservation's safety margin over usage (the master's default)


def saving_pct(without: float | None, with_: float | None) -> float | None:
    """Machines saved by reclamation, in % of the cell needed without it."""
    if without is None or with_ is None:
        return None
    return pct(without - with_, without)


def reclaimed_shares(trial: Trial, limits: dict[str, TraceJob]) -> dict[str, float | None]:
    """Work the master placed in reclaimed room in ``trial``'s packing, as % of the placed work (limits:
    cpu, memory; of all, of non-production) and of the placed tasks."""
    placed, nonprod, reclaimed = [0, 0], [0, 0], [0, 0]
    tasks = 0
    for jobs in trial.placement.values():
        for jid, count in jobs.items():
            job = limits[jid]
            tasks += count
            for d, limit in enumerate((job.cpu, job.memory)):
                placed[d] += limit * count
                if job.priority < PROD_PRIORITY:
                    nonprod[d] += limit * count
    for jid, count in trial.reclaimed.items():
        for d, limit in enumerate((limits[jid].cpu, limits[jid].memory)):
            reclaimed[d] += limit * count

    def share(part: int, whole: int) -> float | None:
        return round(100.0 * part / whole, 2) if whole else None

    return {"cpu_pct": share(reclaimed[0], placed[0]), "memory_pct": share(reclaimed[1], placed[1]),
            "cpu_pct_of_nonprod": share(reclaimed[0], nonprod[0]),
            "memory_pct_of_nonprod": share(reclaimed[1], nonprod[1]),
            "tasks_pct": share(sum(trial.reclaimed.values()), tasks)}


def usage_known(jobs: list[TraceJob]) -> bool:
    return any(j.cpu_usage is not None or j.memory_usage is not None for j in jobs)


def usage_notes(jobs: list[TraceJob], policy: ReservationPolicy) -> list[str]:
    nonprod = [j for j in jobs if j.priority < PROD_PRIORITY]
    tasks = sum(j.tasks for j in jobs)
    cpu = sum(j.tasks for j in jobs if j.cpu_usage is not None)
    memory = sum(j.tasks for j in jobs if j.memory_usage is not None)
    notes = [f"reclaim: the master's reservation estimator over simulated time (margin {policy.margin:g}, decay "
             f"{policy.decay_s:g} s): agents report the trace's usage, reservations decay, rounds place "
             f"non-production work in reclaimed room (at most {MAX_CYCLES} cycles); production keeps its limits",
             f"reclaim: usage known for {cpu} of {tasks} tasks (cpu) and {memory} (memory); "
             "the others report their limit and reserve it"]
    if nonprod and not usage_known(jobs):
        notes.append("reclaim: the trace gives no usage, so reservation = limit and reclamation saves nothing here")
    return notes


def reclaim(cp: Checkpoint, policies: list[str], seeds: list[int], workers: int = 1,
            progress: Progress | None = None, margin: float = MARGIN) -> dict:
    policy = ReservationPolicy(margin=margin)
    forms = {"limit": cp.jobs, "reclaimed": cp.jobs}
    # With no usage anywhere nothing can be reclaimed: the two packings are the same search.
    over_time = {"reclaimed": policy} if usage_known(cp.jobs) else {}
    trials = run_trials(cp.machines, forms, policies, seeds, workers, progress, placement=("reclaimed",),
                        reclaim=over_time)
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
    result["notes"] = (cp.notes + usage_notes(cp.jobs, policy) + grown_notes(trials, cell)
                       + unfit_notes(trials))
    result["events"] = events(trials)
    return result
