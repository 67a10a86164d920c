"""Borg §5.3, fine-grained requests: what would rounding requests up to powers of two cost?

The checkpoint is compacted as it is and with every task's cpu and memory
rounded up to the next power of two; reported are the extra machines (per
trial and from the 90th percentiles) and the extra resources requested.
Borg reports 30-50 % more resources in the median case.

Units (our choice): memory to the next power of two *bytes* (6 GiB -> 8 GiB,
1 GiB stays); cpu to the next power of two *cores*, binary fractions of a core
included (2.4 cores -> 4, 1 -> 1, 0.3 -> 0.5, 0.1 -> 0.125), so whole cores stay
whole — rounding millicores instead would turn 1000m into 1024m. GPUs keep
their request.
"""

from __future__ import annotations

from dataclasses import replace

from corral.sim.experiments.checkpoint import Checkpoint, fits_some_machine
from corral.sim.experiments.summary import cell_sizes, events, extra_pct, grown_notes, header, unfit_notes
from corral.sim.experiments.trials import Progress, run_trials
from corral.sim.trace import TraceJob

MILLI_PER_CORE = 1000


def round_cpu(millicores: int) -> int:
    """The smallest ``1000 * 2**k`` millicores (any integer k, rounded up to a whole millicore) >= the request."""
    if millicores <= 0:
        return millicores
    if millicores >= MILLI_PER_CORE:
        cores = 1
        while cores * MILLI_PER_CORE < millicores:
            cores *= 2
        return cores * MILLI_PER_CORE
    halvings = 0  # the largest n with 1000 / 2**n >= millicores
    while MILLI_PER_CORE >= millicores * 2 ** (halvings + 1):
        halvings += 1
    return -(-MILLI_PER_CORE // 2**halvings)


def round_memory(memory: int) -> int:
    """The next power of two bytes >= the request."""
    return 1 << (memory - 1).bit_length() if memory > 0 else memory


def bucketed(job: TraceJob) -> TraceJob:
    return replace(job, cpu=round_cpu(job.cpu), memory=round_memory(job.memory))


def requested(jobs: list[TraceJob]) -> tuple[int, int]:
    return sum(j.cpu * j.tasks for j in jobs), sum(j.memory * j.tasks for j in jobs)


def buckets(cp: Checkpoint, policies: list[str], seeds: list[int], workers: int = 1,
            progress: Progress | None = None) -> dict:
    rounded = [bucketed(j) for j in cp.jobs]
    fit = fits_some_machine(rounded, cp.machines)
    forms = {"original": [j for j, ok in zip(cp.jobs, fit) if ok], "bucketed": [j for j, ok in zip(rounded, fit) if ok]}
    trials = run_trials(cp.machines, forms, policies, seeds, workers, progress)
    cell = len(cp.machines)
    (cpu, memory), (cpu_b, memory_b) = requested(forms["original"]), requested(forms["bucketed"])
    result = header("buckets", cp, policies, seeds)
    result["tasks_compared"] = sum(j.tasks for j in forms["original"])
    result["extra_requested_pct"] = {"cpu": extra_pct(cpu_b, cpu), "memory": extra_pct(memory_b, memory)}
    result["policies"] = {}
    for p in policies:
        sizes = {w: cell_sizes(trials[(w, p)], cell) for w in forms}
        per_trial = [extra_pct(b.min_machines, a.min_machines)
                     for a, b in zip(trials[("original", p)], trials[("bucketed", p)])]
        result["policies"][p] = {**sizes, "extra_machines_pct": per_trial,
                                 "extra_machines_pct_p90": extra_pct(sizes["bucketed"]["p90"],
                                                                     sizes["original"]["p90"])}
    notes = list(cp.notes)
    if not all(fit):
        left = [j for j, ok in zip(cp.jobs, fit) if not ok]
        notes.append(f"{len(left)} jobs ({sum(j.tasks for j in left)} tasks) left out of both forms: rounded up, "
                     f"a task is larger than every machine (e.g. {left[0].name})")
    notes += ["buckets: cpu rounded up to a power of two of a core (binary fractions included), "
                        "memory to a power of two bytes; GPUs unchanged"]
    result["notes"] = notes + grown_notes(trials, cell) + unfit_notes(trials)
    result["events"] = events(trials)
    return result
