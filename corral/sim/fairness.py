"""How fairly users share the cell under each queue order: one trace replayed once per order.

Each run is an ordinary :class:`~corral.sim.replay.Replay` (the master core and scheduler
unchanged) with ``ReplayConfig.queue_order`` set. At every metric sample it records each
user's dominant share of the cell (running tasks at their requests, as DRF measures it)
and which users want more (have a task pending). From those:

* **Jain's index** (Jain, Chiu and Hawe 1984) of the dominant shares of the users that have a
  task pending, at each sample where at least two do: ``(sum x)^2 / (n sum x^2)``, 1 when
  all are equal, 1/n when one holds everything. Users with nothing pending are left out:
  what they hold is what they asked for, not what the order gave them. Reported as the mean
  over those samples (and their count); samples where they hold nothing yet are left out too.
* **pending delay per user**: from submission (or preemption) to placement, mean and p90.
* **dominant share per user**: time-averaged and peak (the replay's own ``per_user_share``).

Deterministic for a trace, options and seed (everything but ``seconds``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace


def jain(values: list[float]) -> float | None:
    """Jain's fairness index of ``values`` (None for fewer than two, or when all are 0: nothing is
    shared yet, so nothing is unfair)."""
    if len(values) < 2:
        return None
    total, squares = sum(values), sum(v * v for v in values)
    return None if squares == 0 else total * total / (len(values) * squares)


@dataclass
class OrderRun:
    order: str
    summary: dict[str, Any]
    times: list[float] = field(default_factory=list)
    shares: list[dict[str, float]] = field(default_factory=list)  # per sample: user -> dominant share
    wanting: list[set[str]] = field(default_factory=list)  # per sample: users with a task pending
    user_delays: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def jain_series(self) -> list[float | None]:
        return [jain([shares.get(u, 0.0) for u in sorted(want)]) for shares, want in zip(self.shares, self.wanting)]


def run_order(trace: Trace, config: ReplayConfig, order: str,
              progress: Callable[[float, float], None] | None = None) -> OrderRun:
    sim = Replay(trace, replace(config, queue_order=order))
    run = OrderRun(order, {})
    state = sim.core.state

    def sample(now: float, horizon: float) -> None:
        run.times.append(now)
        run.shares.append(sim.metrics.user_shares())
        run.wanting.append({state.jobs[state.tasks[name].job].user for name in sim.metrics.pending_since})
        if progress:
            progress(now, horizon)

    started = time.perf_counter()
    result = sim.run(sample)
    run.seconds = time.perf_counter() - started
    run.summary = result.summary
    run.user_delays = {u: list(d) for u, d in sim.metrics.user_delays.items()}
    return run


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def order_summary(run: OrderRun) -> dict[str, Any]:
    series = [j for j in run.jain_series() if j is not None]
    users = sorted(set(run.summary["per_user_share"]) | set(run.user_delays))
    per_user = {}
    for user in users:
        delays = np.array(run.user_delays.get(user) or [0.0])
        share = run.summary["per_user_share"].get(user, {"mean": 0.0, "peak": 0.0})
        per_user[user] = {"share_mean": share["mean"], "share_peak": share["peak"],
                          "placements": len(run.user_delays.get(user, ())),
                          "pending_delay_mean_s": _r(delays.mean()), "pending_delay_p90_s": _r(np.percentile(delays, 90))}
    means = [v["pending_delay_mean_s"] for v in per_user.values() if v["placements"]]
    return {
        "jain_mean": _r(sum(series) / len(series)) if series else None,
        "jain_min": _r(min(series)) if series else None,
        "contended_samples": len(series),
        "samples": len(run.times),
        "pending_delay_mean_s": run.summary["pending_delay_s"]["mean"],
        "pending_delay_p90_s": run.summary["pending_delay_s"]["p90"],
        "user_delay_mean_spread_s": _r(max(means) - min(means)) if means else None,
        "placements": run.summary["placements"],
        "pending_at_end": run.summary["pending_at_end"],
        "per_user": per_user,
    }


def fairness(trace: Trace, orders: list[str], config: ReplayConfig = ReplayConfig(),
             progress: Callable[[str, float, float], None] | None = None) -> tuple[dict[str, Any], list[OrderRun]]:
    """Replay ``trace`` once per queue order; the summary (deterministic but for ``seconds``) and the runs."""
    started = time.perf_counter()
    runs = [run_order(trace, config, order, (lambda n, h, o=order: progress(o, n, h)) if progress else None)
            for order in orders]
    heavy = Counter()
    for run in runs:
        for user, share in run.summary["per_user_share"].items():
            heavy[user] += share["mean"]
    summary = {
        "experiment": "fairness",
        "trace": trace.name,
        "policy": config.policy,
        "seed": config.seed,
        "machines": len(trace.machines),
        "tasks": trace.task_count(),
        "orders": {run.order: order_summary(run) for run in runs},
        "heaviest_users": [u for u, _ in heavy.most_common(8)],
        "notes": list(trace.notes),
    }
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary, runs
