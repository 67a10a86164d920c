"""The smallest cell that holds a workload (Borg §5.1, cell compaction), for one seed.

The seed orders the cell's machines at random (NumPy ``default_rng(seed)``);
the answer is the smallest ``k`` such that the first ``k`` machines of that
order hold the workload with at most ``allowance`` of its tasks left pending
(Borg allowed a few stragglers: 0.2 %). Each probe packs the workload from
scratch with the master (:func:`~corral.sim.experiments.pack.fits`).

Assumption: *monotone*. If ``k`` machines suffice, so do ``k + 1``; that lets a
binary search find ``k`` with log2 of the cell size probes. A heuristic
scheduler can break it now and then (one more machine changes where earlier
tasks went); the search then returns *a* size that fits whose predecessor,
as probed, did not — Borg's own experiments repeated the search over seeds for
this reason and report the 90th percentile.

Probes below a lower bound are skipped: k machines that hold all but
``allowed`` tasks hold at least the total request minus the ``allowed`` largest
task requests, in each resource, so the first k machines' capacity must too.

A workload that does not fit the whole cell (the trace's cell is oversubscribed
at the checkpoint, or an experiment made the tasks bigger) is searched for on a
larger cell, as Borg did: machines of the cell, chosen at random, are cloned
onto the end of the order. The growth starts at the lower bound (a burst may ask
for many times the cell), adds the cell's size, then twice that, and so on, and
gives up beyond ``GROWTH_LIMIT`` times where it started.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from corral.master.reservations import ReservationPolicy
from corral.model.resources import GPU_MILLI_WHOLE
from corral.sim.experiments.pack import PackResult, fits
from corral.sim.experiments.reclaim_pack import floor_job
from corral.sim.trace import TraceJob, TraceMachine

ALLOWANCE = 0.002  # of the tasks may stay pending (Borg §5.1)
GROWTH_LIMIT = 4  # the cell may grow by clones to this many times max(its size, the lower bound)


@dataclass
class Trial:
    """One seed's search: the smallest cell (None: not even ``GROWTH_LIMIT`` times the cell held it)."""

    seed: int
    min_machines: int | None
    pending: int  # tasks left pending at that size
    probes: int  # packings tried
    events: int  # master events over all probes
    placement: dict[str, Counter] = field(default_factory=dict)  # at the minimum, when asked for
    capacity: dict[str, tuple[int, int]] = field(default_factory=dict)  # machine -> (cpu, memory), with placement
    reclaimed: Counter = field(default_factory=Counter)  # job id -> tasks in reclaimed room there, with placement


def allowed_pending(tasks: int, allowance: float = ALLOWANCE) -> int:
    return math.floor(tasks * allowance + 1e-9)


def machine_order(machines: list[TraceMachine], rng: np.random.Generator) -> list[TraceMachine]:
    return [machines[i] for i in rng.permutation(len(machines))]


def clones(machines: list[TraceMachine], rng: np.random.Generator, count: int, start: int) -> list[TraceMachine]:
    """``count`` copies of machines chosen at random, named ``<name>.clone<n>`` from n = ``start``."""
    picks = rng.integers(0, len(machines), size=count)
    return [TraceMachine(f"{machines[i].name}.clone{start + n}", machines[i].cpu, machines[i].memory,
                         machines[i].gpu, machines[i].gpu_model, machines[i].attributes)
            for n, i in enumerate(picks)]


def demand_floor(jobs: list[TraceJob], allowed: int) -> np.ndarray:
    """Per resource (cpu, memory, GPU milli): the total request less the ``allowed`` largest task requests."""
    counts = np.array([j.tasks for j in jobs], dtype=np.int64)
    floor = []
    for need in ([j.cpu for j in jobs], [j.memory for j in jobs], [j.gpu * j.gpu_milli for j in jobs]):
        per_task = np.repeat(np.array(need, dtype=np.int64), counts)
        largest = np.partition(per_task, len(per_task) - allowed)[len(per_task) - allowed:] if allowed else []
        floor.append(int(per_task.sum()) - int(np.sum(largest)))
    return np.array(floor, dtype=np.int64)


def lower_bound(order: list[TraceMachine], jobs: list[TraceJob], allowed: int,
                floor: np.ndarray | None = None) -> int:
    """No prefix of ``order`` shorter than this can hold all but ``allowed`` of the tasks
    (``len(order) + 1``: not even all of it)."""
    if not jobs or sum(j.tasks for j in jobs) <= allowed:
        return 0
    floor = demand_floor(jobs, allowed) if floor is None else floor
    bound = 1
    for required, have in zip(floor, ([m.cpu for m in order], [m.memory for m in order],
                                      [m.gpu * GPU_MILLI_WHOLE for m in order])):
        if required > 0:
            prefix = np.cumsum(np.array(have, dtype=np.int64))
            bound = max(bound, int(np.searchsorted(prefix, required)) + 1)
    return bound


class _Search:
    """One seed's search state: the machine order (grown by clones as needed) and the probes so far."""

    def __init__(self, machines: list[TraceMachine], jobs: list[TraceJob], policy: str, seed: int,
                 allowance: float, placement: bool, reclaim: ReservationPolicy | None = None):
        self.machines, self.jobs, self.policy, self.seed, self.placement = machines, jobs, policy, seed, placement
        self.reclaim = reclaim
        self.rng = np.random.default_rng(seed)
        self.order = machine_order(machines, self.rng)
        self.tasks = sum(j.tasks for j in jobs)
        self.allowed = allowed_pending(self.tasks, allowance)
        self.trial = Trial(seed, None, self.tasks, 0, 0)
        self.best: tuple[int, PackResult] | None = None  # the smallest size that fitted
        self.largest_failed = 0  # the largest size that did not

    def extend(self, size: int) -> None:
        """Clone machines onto the end of the order until it has ``size`` machines."""
        if len(self.order) < size:
            self.order += clones(self.machines, self.rng, size - len(self.order), len(self.order) - len(self.machines))

    def probe(self, k: int) -> bool:
        result = fits(self.order[:k], self.jobs, self.policy, self.seed, self.placement, self.reclaim)
        self.trial.probes += 1
        self.trial.events += result.events
        ok = result.pending <= self.allowed
        if ok and (self.best is None or k < self.best[0]):
            self.best = (k, result)
        if not ok:
            self.largest_failed = max(self.largest_failed, k)
        return ok

    def lowest_possible(self) -> int | None:
        """The lower bound, with the order extended by clones until it lies inside; None if no
        number of machines could do (a resource the cell does not have at all)."""
        if not self.jobs:
            return 0
        # With reclamation non-production work holds less than its limits once reservations decayed.
        floor = demand_floor([floor_job(j, self.reclaim) for j in self.jobs] if self.reclaim else self.jobs,
                             self.allowed)
        totals = (sum(m.cpu for m in self.machines), sum(m.memory for m in self.machines),
                  sum(m.gpu for m in self.machines))
        if any(need > 0 and not total for need, total in zip(floor, totals)):
            return None
        low = lower_bound(self.order, self.jobs, self.allowed, floor)
        while low > len(self.order):
            self.extend(len(self.order) + len(self.machines))
            low = lower_bound(self.order, self.jobs, self.allowed, floor)
        return low

    def first_fitting(self, low: int) -> int | None:
        """A size that fits: the whole cell or, beyond it, the lower bound, then steps of the cell's
        size doubling each time, up to ``GROWTH_LIMIT`` times where it started. None: none did."""
        size, step = max(len(self.machines), low), len(self.machines)
        limit = GROWTH_LIMIT * size
        while True:
            self.extend(size)
            if self.probe(size):
                return size
            if size >= limit:
                return None
            size, step = min(size + step, limit), 2 * step

    def bisect(self, failing: int, fitting: int) -> None:
        """Narrow (failing, fitting] down to one size, assuming monotone fit."""
        while fitting - failing > 1:
            middle = (failing + fitting) // 2
            if self.probe(middle):
                fitting = middle
            else:
                failing = middle


def minimum_cell(machines: list[TraceMachine], jobs: list[TraceJob], policy: str, seed: int,
                 allowance: float = ALLOWANCE, placement: bool = False,
                 reclaim: ReservationPolicy | None = None) -> Trial:
    """The smallest prefix of the seed's machine order that holds ``jobs`` (see the module doc;
    ``reclaim``: each probe packed with reclamation as time passes, pack.fits)."""
    search = _Search(machines, jobs, policy, seed, allowance, placement, reclaim)
    trial = search.trial
    low = search.lowest_possible() if machines else None
    if low == 0:  # nothing to place, or few enough tasks to leave them all pending
        trial.min_machines, trial.pending = 0, search.tasks
        return trial
    fitting = None if low is None else search.first_fitting(low)
    if fitting is None:
        return trial
    search.bisect(max(low - 1, search.largest_failed), fitting)
    size, result = search.best
    trial.min_machines, trial.pending = size, result.pending
    if placement:
        trial.placement = result.placement
        trial.capacity = {m.name: (m.cpu, m.memory) for m in search.order[:size]}
        trial.reclaimed = result.reclaimed
    return trial
