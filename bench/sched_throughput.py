"""Scheduler throughput on a synthetic heterogeneous cell, with and without Borg's scale techniques.

    python bench/sched_throughput.py --machines 10000 --tasks 100000 --json

Prints one JSON object (the last line with --json):
- ``placements_per_s``: the whole workload, equivalence classes + score cache + relaxed
  randomization on (the default scheduler); the fastest of ``--repeat`` runs (all are listed:
  this machine is shared, and the fastest run is the one least disturbed);
- ``naive_placements_per_s``: the first ``--naive-tasks`` tasks of the same workload on the same
  cell with all three off (every machine checked and scored for every task, by the same
  vectorised code); ``speedup`` is the ratio, both measured in this run;
- ``ablation_placements_per_s``: the bounded subset with the techniques switched on one by one;
- ``parity``: both modes on a loaded cell of ``--naive-tasks`` tasks (the workload's own
  machines-to-tasks ratio), to show that relaxed randomization does not cost placements;
- ``invariants``: checked on every resulting view and plan;
- ``by_order``: with ``--order drf,round-robin`` (the default) the whole workload under each queue
  order, runs interleaved, fastest of each: ``placements_per_s`` and ``placed`` per order, and
  ``order_cost_pct``, how many fewer placements per second the first order makes than the
  second, in percent (negative: it is faster), by wall time and (``order_cost_cpu_pct``) by the
  process's CPU time, the steadier of the two on a shared machine. ``placements_per_s`` above is
  the first order's.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corral.sched.cellview import CellView  # noqa: E402
from corral.sched.scheduler import Scheduler, SchedulerConfig  # noqa: E402
from corral.sim.synthetic import synthetic_cell, synthetic_workload  # noqa: E402

NAIVE = dict(equivalence_classes=False, score_cache=False, relaxed_randomization=False)


def check_invariants(view: CellView, plan, pending) -> list[str]:
    problems = []
    if (view.free < 0).any() or (view.gpu_idle < 0).any():
        problems.append("a machine is over-committed")
    if not np.array_equal(view.free, view.capacity - view.used.sum(axis=0)):
        problems.append("free != capacity - used")
    placed = [p.task_id for p in plan.placements]
    if len(placed) != len(set(placed)):
        problems.append("a task was placed twice")
    if set(placed) | set(plan.unplaced) != {t.id for t in pending}:
        problems.append("a task is neither placed nor explained")
    return problems


def timed(config: SchedulerConfig, machines, work):
    view = CellView(machines)
    scheduler = Scheduler(config)
    start, cpu = time.perf_counter(), time.process_time()
    plan = scheduler.schedule(view, work)
    seconds = time.perf_counter() - start
    timed.cpu_seconds = time.process_time() - cpu  # type: ignore[attr-defined]
    return view, plan, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--naive-tasks", type=int, default=5_000)
    parser.add_argument("--policy", default="hybrid")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the whole workload; the fastest counts")
    parser.add_argument("--order", default="drf,round-robin",
                        help="queue orders to compare on the whole workload, comma-separated; the first is the main run")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args()
    orders = [o.strip() for o in args.order.split(",") if o.strip()]
    from corral.sched.queue import USER_ORDERS

    bad = [o for o in orders if o not in USER_ORDERS]
    if not orders or bad:
        parser.error(f"--order: expected names among {', '.join(USER_ORDERS)}, got {args.order!r}")

    machines = synthetic_cell(args.machines, args.seed)
    work = synthetic_workload(args.tasks, args.seed, machines=args.machines)
    fast = SchedulerConfig(policy=args.policy, seed=args.seed, queue_order=orders[0])
    naive = SchedulerConfig(policy=args.policy, seed=args.seed, queue_order=orders[0], **NAIVE)

    # Interleaved so that a busy moment of this shared machine does not fall on one order only.
    by_order_runs: dict[str, list] = {o: [] for o in orders}
    cpu_seconds: dict[str, list[float]] = {o: [] for o in orders}
    for _ in range(max(1, args.repeat)):
        for order in orders:
            by_order_runs[order].append(timed(SchedulerConfig(policy=args.policy, seed=args.seed, queue_order=order),
                                              machines, work))
            cpu_seconds[order].append(timed.cpu_seconds)  # type: ignore[attr-defined]
    problems = []
    by_order: dict = {}
    for order, order_runs in by_order_runs.items():
        v, p, s = min(order_runs, key=lambda run: run[2])
        problems += check_invariants(v, p, work)
        by_order[order] = {"placements_per_s": round(len(p.placements) / s),
                           "placements_per_cpu_s": round(len(p.placements) / min(cpu_seconds[order])),
                           "placed": len(p.placements),
                           "seconds_all_runs": [round(run[2], 3) for run in order_runs],
                           "cpu_seconds_all_runs": [round(c, 3) for c in cpu_seconds[order]]}
    runs = by_order_runs[orders[0]]
    view, plan, seconds = min(runs, key=lambda run: run[2])
    all_seconds = [round(run[2], 3) for run in runs]
    if len(orders) > 1:
        # On a shared machine the process's CPU time is the steadier measure; both are given.
        for key, suffix in (("placements_per_s", ""), ("placements_per_cpu_s", "_cpu")):
            first, second = by_order[orders[0]][key], by_order[orders[1]][key]
            by_order[f"order_cost{suffix}_pct"] = round(100.0 * (second - first) / max(1, second), 2)
    del runs, by_order_runs
    # The naive run takes the first tasks in queue order: the same tasks the fast run started with.
    naive_work = work[: args.naive_tasks]
    naive_view, naive_plan, naive_seconds = timed(naive, machines, naive_work)
    problems += check_invariants(naive_view, naive_plan, naive_work)

    # Parity on a loaded cell: as many tasks per machine as the full benchmark.
    small_machines = max(1, args.naive_tasks * args.machines // args.tasks)
    small_cell = synthetic_cell(small_machines, args.seed)
    small_work = synthetic_workload(args.naive_tasks, args.seed, machines=small_machines)
    parity = {}
    full = SchedulerConfig(policy=args.policy, seed=args.seed, queue_order=orders[0], relaxed_randomization=False)
    for name, config in (("relaxed", fast), ("full", full), ("naive", naive)):
        v, p, _ = timed(config, small_cell, small_work)
        problems += check_invariants(v, p, small_work)
        parity[f"placed_{name}"] = len(p.placements)
    parity.update(machines=small_machines, tasks=len(small_work))
    parity["relaxed_vs_naive_diff_pct"] = round(
        100.0 * abs(parity["placed_relaxed"] - parity["placed_naive"]) / max(1, parity["placed_naive"]), 3
    )

    # Each technique's share, on the bounded subset: switched on one after the other.
    ablation = {}
    steps = (
        ("naive", NAIVE),
        ("equivalence_classes", dict(score_cache=False, relaxed_randomization=False)),
        ("plus_score_cache", dict(relaxed_randomization=False)),
        ("plus_relaxed_randomization", {}),
    )
    for name, switches in steps:
        if name == "naive":
            ablation[name] = round(len(naive_plan.placements) / naive_seconds, 1)
            continue
        v, p, s = timed(SchedulerConfig(policy=args.policy, seed=args.seed, queue_order=orders[0], **switches),
                        machines, naive_work)
        problems += check_invariants(v, p, naive_work)
        ablation[name] = round(len(p.placements) / s, 1)

    placements_per_s = len(plan.placements) / seconds
    naive_per_s = len(naive_plan.placements) / naive_seconds
    result = {
        "machines": args.machines,
        "tasks": len(work),
        "placed": len(plan.placements),
        "unplaced": len(plan.unplaced),
        "seconds": round(seconds, 3),
        "seconds_all_runs": all_seconds,
        "placements_per_s": round(placements_per_s),
        "classes": int(plan.stats.get("classes", 0)),
        "machine_evaluations": int(plan.stats.get("evaluations", 0)),
        "cache_hits": int(plan.stats.get("cache_hits", 0)),
        "naive_tasks": len(naive_work),
        "naive_placed": len(naive_plan.placements),
        "naive_seconds": round(naive_seconds, 3),
        "naive_placements_per_s": round(naive_per_s, 1),
        "speedup": round(placements_per_s / naive_per_s, 2),
        "ablation_placements_per_s": ablation,
        "parity": parity,
        "by_order": by_order,
        "invariants": "ok" if not problems else problems,
        "policy": args.policy,
        "order": orders[0],
        "seed": args.seed,
        "python": platform.python_version(),
    }
    if not args.json:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
