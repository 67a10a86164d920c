"""Many compaction searches at once: workloads x policies x seeds, in worker processes.

Results come back keyed and ordered by (workload, policy, seed) as given, whatever
order the workers finish in, so the output of an experiment does not depend on
the number of workers. Workers receive the cell and the workloads once (the
pool's initializer), then only the keys of the searches to run.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Sequence

from corral.master.reservations import ReservationPolicy
from corral.sim.experiments.search import ALLOWANCE, Trial, minimum_cell
from corral.sim.trace import TraceJob, TraceMachine

Key = tuple[str, str, int]  # (workload, policy, seed)
Progress = Callable[[Key, Trial], None]

_cell: list[TraceMachine] = []
_workloads: dict[str, list[TraceJob]] = {}
_placement: frozenset[str] = frozenset()
_allowance = ALLOWANCE
_reclaim: dict[str, ReservationPolicy] = {}


def _setup(machines, workloads, placement, allowance, reclaim=None) -> None:
    global _cell, _workloads, _placement, _allowance, _reclaim
    _cell, _workloads, _placement, _allowance = machines, workloads, frozenset(placement), allowance
    _reclaim = dict(reclaim or {})


def _search(key: Key) -> tuple[Key, Trial]:
    workload, policy, seed = key
    return key, minimum_cell(_cell, _workloads[workload], policy, seed, _allowance, workload in _placement,
                             _reclaim.get(workload))


def _report(progress: Progress | None, key: Key, trial: Trial, same: dict[str, str]) -> None:
    """Tell ``progress`` about the trial, once for each workload it stands for."""
    if progress:
        for workload, representative in same.items():
            if representative == key[0]:
                progress((workload, key[1], key[2]), trial)


def _context():
    # fork: workers start without importing corral again. The pool forks all its workers before
    # it starts its own thread, and the CLI's progress bar runs no thread, so nothing is forked
    # holding a lock.
    methods = mp.get_all_start_methods()
    return mp.get_context("fork") if "fork" in methods else None


def run_trials(machines: list[TraceMachine], workloads: dict[str, list[TraceJob]], policies: Sequence[str],
               seeds: Sequence[int], workers: int = 1, progress: Progress | None = None,
               placement: Sequence[str] = (), allowance: float = ALLOWANCE,
               reclaim: dict[str, ReservationPolicy] | None = None) -> dict[tuple[str, str], list[Trial]]:
    """``{(workload, policy): [Trial per seed, in seed order]}``; ``placement`` names the workloads
    whose trials keep their packing at the minimum; ``reclaim`` the workloads packed with reclamation
    as time passes, with the master's reservation policy for each."""
    reclaim = dict(reclaim or {})
    # Identical workloads (no production work to split off) packed the same way are searched once.
    same: dict[str, str] = {}
    for w in workloads:
        same[w] = next(u for u in workloads if u == w or (same.get(u) == u and workloads[u] == workloads[w]
                                                          and reclaim.get(u) == reclaim.get(w)))
    unique = {w: jobs for w, jobs in workloads.items() if same[w] == w}
    placement = {same[w] for w in placement}
    keys = [(w, p, s) for w in unique for p in policies for s in seeds]
    done: dict[Key, Trial] = {}
    if workers <= 1 or len(keys) <= 1:
        _setup(machines, unique, placement, allowance, reclaim)
        for key in keys:
            done[key] = _search(key)[1]
            _report(progress, key, done[key], same)
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(keys)), mp_context=_context(),
                                 initializer=_setup,
                                 initargs=(machines, unique, tuple(placement), allowance, reclaim)) as pool:
            for future in as_completed([pool.submit(_search, key) for key in keys]):
                key, trial = future.result()
                done[key] = trial
                _report(progress, key, trial, same)
    return {(w, p): [done[(same[w], p, s)] for s in seeds] for w in workloads for p in policies}
