"""openb with and without the rebalancer (issue 15): GPU allocation at 130 %, fragmentation, moves.

The replay is the benchmark's (``experiment.replay``: pods one at a time, a pod that does not
fit is dropped) with corral's rebalancer beside the scheduler, running the same planning code
the master runs (``corral.sched.rebalance``):

* goal (a): a pod that fits nowhere gets a free-room pass (``free_room``: at most
  ``max_moves`` moves, none if they would not give it room), then is submitted again;
* goal (b): every ``interval`` pods, a defragmenting pass (FGD's measure with the workload's
  typical pods, the one the benchmark reports) of at most ``max_moves`` moves.

openb pods are independent batch pods: all movable, and each may move once per pass (a
budget of ``max_moving: 1`` per pod). With the rebalancer off the same function runs without
passes, so both sides are measured alike: allocation at 130 %, the fragmentation ratio around
90 % and 130 % arrived, and the moves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from corral.sched.cellview import CellView
from corral.sched.rebalance.budget import BudgetLedger, DisruptionBudget, JobBudget
from corral.sched.rebalance.defragment import defragment
from corral.sched.rebalance.fragmentation import GpuFragmentation
from corral.sched.rebalance.free_room import free_room
from corral.sched.rebalance.moves import Journal
from corral.sched.request import PendingTask
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sim.openb.bound import allocation_bound
from corral.sim.openb.curve import allocation_curve, bucket_mean
from corral.sim.openb.experiment import _inputs, machine_ranks
from corral.sim.openb.frag import FragReport
from corral.sim.openb.loader import normalise_workload
from corral.sim.openb.policies import make_openb_policy
from corral.sim.openb.tuning import tune_workload

FRAG_AT = (90, 130)


@dataclass(frozen=True)
class OpenbRebalance:
    enabled: bool = True
    interval: int = 200  # pods between defragmenting passes
    max_moves: int = 16  # per pass
    max_machines: int = 4  # machines a free-room pass may clear for one pod
    max_sources: int = 4  # most fragmented machines a defragmenting pass looks at


class _PerPod(dict):
    """Every pod is its own movable job with a budget of one move per pass."""

    budget = JobBudget(True, DisruptionBudget(max_moving=1), tasks=1)

    def get(self, key, default=None):
        return self.budget


def run_rebalanced(trace_dir, workload: str, policy: str, seed: int, config: OpenbRebalance) -> dict:
    workload = normalise_workload(workload, trace_dir)
    nodes, pods, typical, pod_info = _inputs(str(trace_dir), workload)
    view = CellView(nodes)
    view.rank = machine_ranks(nodes, seed)
    total = int(view.gpu_count.sum())
    order = tune_workload(pods, total * 1000, seed)
    pol = make_openb_policy(policy, seed, typical, pod_info)
    scheduler = Scheduler(SchedulerConfig(policy=policy, seed=seed, relaxed_randomization=False, preemption=False),
                          policy=pol)
    measure = GpuFragmentation(typical)
    report = FragReport(view, typical)
    n = len(order)
    arrived, used, frag = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.full(n, np.nan)
    moves = {"free-room": 0, "defragment": 0}
    freed = 0
    windows = [((x - 1.5) * total * 10, (x + 1.5) * total * 10) for x in FRAG_AT]
    start = time.perf_counter()
    a = u = 0
    for i, pod in enumerate(order):
        a += pod.gpu_demand
        task = PendingTask(pod.name, pod.name, "openb", pod.request)  # each pod its own job: its own budget
        placed = bool(scheduler.schedule(view, [task]).placements)
        if not placed and config.enabled:
            journal = Journal(view, BudgetLedger(_PerPod()))
            if free_room(journal, pol, pod.request, 1, f"pod {pod.name}", config.max_moves, config.max_machines):
                moves["free-room"] += len(journal.done)
                freed += 1
                placed = bool(scheduler.schedule(view, [task]).placements)
        if placed:
            u += pod.gpu_demand
        if config.enabled and (i + 1) % config.interval == 0:
            journal = Journal(view, BudgetLedger(_PerPod()))
            moves["defragment"] += defragment(journal, pol, measure, config.max_moves, max_sources=config.max_sources)
        arrived[i], used[i] = a, u
        if any(lo <= a <= hi for lo, hi in windows):
            frag[i] = report.ratio()
    seconds = time.perf_counter() - start
    curve = allocation_curve(arrived, used, total)
    return {
        "workload": workload, "policy": policy, "seed": seed, "rebalance": config.enabled,
        "alloc_130": curve.get(130), "alloc_final": round(100.0 * u / (total * 1000), 3),
        "frag_ratio": {str(x): bucket_mean(arrived, frag, total, x) for x in FRAG_AT},
        "moves": sum(moves.values()), "moves_by_goal": moves, "pods_given_room": freed,
        "seconds": round(seconds, 3),
    }


def compare_rebalance(trace_dir, workload: str, policy: str, seeds, config: OpenbRebalance) -> dict:
    """Per seed with and without the rebalancer, their means, and the workload's allocation bound."""
    from dataclasses import replace

    runs = []
    for seed in seeds:
        runs.append(run_rebalanced(trace_dir, workload, policy, seed, replace(config, enabled=False)))
        runs.append(run_rebalanced(trace_dir, workload, policy, seed, config))

    def mean(key, on, sub=None):
        vals = [(r[key][sub] if sub else r[key]) for r in runs if r["rebalance"] is on]
        vals = [v for v in vals if v is not None]
        return round(float(np.mean(vals)), 3) if vals else None

    summary = {on_name: {"alloc_130": mean("alloc_130", on), "frag_ratio_90": mean("frag_ratio", on, "90"),
                         "frag_ratio_130": mean("frag_ratio", on, "130"), "moves": mean("moves", on)}
               for on_name, on in (("without", False), ("with", True))}
    bound = allocation_bound(trace_dir, workload, seeds)
    return {"workload": normalise_workload(workload, trace_dir), "policy": policy, "seeds": list(seeds),
            "config": {"interval": config.interval, "max_moves": config.max_moves}, **summary,
            "bound": bound, "runs": runs}
