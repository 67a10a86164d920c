"""One openb experiment (PROTOCOL §3-§4, §9-§10): a workload, a policy, a seed -> the curves.

Flow: load nodes and pods; typical pods from the original pods; shuffle and
tune the pods to 130 % of GPU capacity with the seed; rank machines by a
seeded permutation (the artifact's random node-name prefixes, which decide
ties); then submit pods one at a time, in order, to corral's
:class:`~corral.sched.scheduler.Scheduler` on a :class:`~corral.sched.cellview.CellView`
(exhaustive scoring, score caches across calls, no preemption). A pod that
does not fit is dropped. After each pod event the arrived and allocated GPU
milli are recorded, and around the 90 % bucket the fragmentation ratio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from corral.model.machine import Machine
from corral.sched.cellview import CellView
from corral.sched.request import PendingTask
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sim.openb.curve import allocation_curve, arrive_ratio, bucket_mean
from corral.sim.openb.frag import FragReport
from corral.sim.openb.loader import OpenbPod, load_nodes, load_pods, normalise_workload
from corral.sim.openb.policies import make_openb_policy
from corral.sim.openb.tuning import tune_workload
from corral.sim.openb.typical import typical_pods

REPORT_COLUMNS = (50, 70, 90, 100, 110, 120, 130)
FRAG_COLUMN = 90
RANK_STREAM = 1  # the machine ranking uses its own stream of the seed


@dataclass
class RunResult:
    workload: str
    policy: str
    seed: int
    alloc: dict[int, float | None]
    frag_ratio: dict[int, float | None]
    placed: int
    failed: int
    cpu_only_placed: int
    cpu_only_failed: int
    seconds: float
    stats: dict = field(default_factory=dict)


@lru_cache(maxsize=8)
def _inputs(trace_dir: str, workload: str):
    nodes = load_nodes(Path(trace_dir))
    pods = load_pods(Path(trace_dir), workload)
    return nodes, pods, typical_pods(p.key for p in pods), tuple((p.key, p.request.resources.memory) for p in pods)


def machine_ranks(nodes: list[Machine], seed: int) -> np.ndarray:
    """Tie-break rank per machine: a seeded permutation over the machines sorted by name."""
    order = sorted(range(len(nodes)), key=lambda i: nodes[i].name)
    perm = np.random.default_rng([seed, RANK_STREAM]).permutation(len(nodes))
    rank = np.empty(len(nodes), dtype=np.int64)
    rank[order] = perm
    return rank


def run_experiment(trace_dir: Path, workload: str, policy: str, seed: int) -> RunResult:
    workload = normalise_workload(workload, trace_dir)
    nodes, pods, typical, pod_info = _inputs(str(trace_dir), workload)
    view = CellView(nodes)
    view.rank = machine_ranks(nodes, seed)
    total_gpus = int(view.gpu_count.sum())
    order = tune_workload(pods, total_gpus * 1000, seed)
    scheduler = Scheduler(
        SchedulerConfig(policy=policy, seed=seed, relaxed_randomization=False, preemption=False),
        policy=make_openb_policy(policy, seed, typical, pod_info),
    )
    start = time.perf_counter()
    arrived, used, ratios = replay(view, scheduler, order, typical, total_gpus)
    seconds = time.perf_counter() - start
    placed = int(np.count_nonzero(ratios[1]))
    cpu_pods = np.array([p.num_gpu == 0 for p in order])
    ok = ratios[1]
    frag_at = bucket_mean(arrived, ratios[0], total_gpus, FRAG_COLUMN)
    return RunResult(
        workload=workload, policy=policy, seed=seed,
        alloc=allocation_curve(arrived, used, total_gpus),
        frag_ratio={FRAG_COLUMN: frag_at},
        placed=placed, failed=len(order) - placed,
        cpu_only_placed=int((ok & cpu_pods).sum()), cpu_only_failed=int((~ok & cpu_pods).sum()),
        seconds=seconds, stats=dict(scheduler.stats),
    )


def replay(view: CellView, scheduler: Scheduler, order: list[OpenbPod], typical, total_gpus: int):
    """Submit pods one at a time; returns (arrived, used) per event and (frag ratio, placed) per event."""
    report = FragReport(view, typical)
    n = len(order)
    arrived = np.zeros(n, dtype=np.int64)
    used = np.zeros(n, dtype=np.int64)
    frag = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    a = u = 0
    low, high = (FRAG_COLUMN - 1.5) * total_gpus * 10, (FRAG_COLUMN + 1.5) * total_gpus * 10
    for i, pod in enumerate(order):
        a += pod.gpu_demand
        plan = scheduler.schedule(view, [PendingTask(pod.name, "openb", "openb", pod.request)])
        if plan.placements:
            u += pod.gpu_demand
            ok[i] = True
        arrived[i], used[i] = a, u
        if low <= a <= high:
            frag[i] = report.ratio()
    return arrived, used, (frag, ok)
