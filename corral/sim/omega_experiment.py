"""``corral sim omega``'s sweep: each mode at each service decision time, the same trace and seed.

Every run is one :class:`~corral.sim.omega.OmegaReplay` from scratch (same trace, same seed), so
runs differ only in the mode and the service scheduler's ``t_job``. The summary holds, per run,
the figures the issue names (``results``: mode, service decision time, batch wait p50/p90,
busyness per scheduler, conflict fraction) and the rest measured beside them (``runs``: service
waits, transactions and conflicts per scheduler, preemptions); ``target`` compares batch wait p90
at 10 s with its value at 0.1 s. Everything but ``seconds`` is a function of the inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from corral.sim.omega import MODES, SERVICE_APPCLASS, OmegaConfig, OmegaReplay
from corral.sim.trace import Trace

DECISION_TIMES = (0.1, 1.0, 10.0, 100.0)  # the service scheduler's t_job, simulated seconds
RESULT_KEYS = ("mode", "service_decision_s", "batch_wait_p50_s", "batch_wait_p90_s", "busyness",
               "conflict_fraction")
TARGET_AT_S, TARGET_BASE_S = 10.0, 0.1
TARGET_SHARED_WITHIN, TARGET_MONOLITHIC_WORSE = 1.2, 5.0


@dataclass
class OmegaRun:
    figures: dict[str, Any]
    waits: list[tuple[str, str, float, float | None]] = field(default_factory=list)  # job, kind, submitted, wait


def run_one(trace: Trace, config: OmegaConfig) -> OmegaRun:
    replay = OmegaReplay(trace, config)
    figures = replay.run_omega()
    waits = [(j, "service" if replay.is_service(j) else "batch", t, replay.waits.get(j))
             for j, t in replay.submitted.items()]
    return OmegaRun(figures, waits)


def omega_experiment(trace: Trace, decisions: tuple[float, ...] = DECISION_TIMES, modes: tuple[str, ...] = MODES,
                     base: OmegaConfig = OmegaConfig(),
                     progress: Callable[[str, float], None] | None = None) -> tuple[dict[str, Any], list[OmegaRun]]:
    """Run every (mode, decision time); the summary and the runs (their per-job waits for the CSV)."""
    started = time.perf_counter()
    runs = []
    for mode in modes:
        for decision in decisions:
            if progress:
                progress(mode, decision)
            runs.append(run_one(trace, replace(base, mode=mode, service_decision_s=decision)))
    results = [{k: run.figures[k] for k in RESULT_KEYS} for run in runs]
    measured = [j for j in trace.jobs if j.arrival > 0]
    summary = {
        "experiment": "omega",
        "trace": trace.name,
        "seed": base.seed,
        "policy": base.policy,
        "machines": len(trace.machines),
        "jobs": {"service": sum(1 for j in measured if j.appclass == SERVICE_APPCLASS),
                 "batch": sum(1 for j in measured if j.appclass != SERVICE_APPCLASS),
                 "running_at_start": len(trace.jobs) - len(measured)},
        "decision": {"batch_job_s": base.batch_decision_s, "task_s": base.task_decision_s,
                     "service_job_s": list(decisions)},
        "results": results,
        "runs": [run.figures for run in runs],
        "target": target(results),
        "notes": list(trace.notes),
    }
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary, runs


def target(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Batch wait p90 at 10 s over its value at 0.1 s (shared: within 1.2x), and monolithic at 10 s over
    shared at 10 s (at least 5x); None when a run it needs was not made."""
    p90 = {(r["mode"], r["service_decision_s"]): r["batch_wait_p90_s"] for r in results}
    need = [("shared", TARGET_AT_S), ("shared", TARGET_BASE_S), ("monolithic", TARGET_AT_S),
            ("monolithic", TARGET_BASE_S)]
    if any(k not in p90 for k in need):
        return None
    shared = _ratio(p90[("shared", TARGET_AT_S)], p90[("shared", TARGET_BASE_S)])
    worse = _ratio(p90[("monolithic", TARGET_AT_S)], p90[("shared", TARGET_AT_S)])
    own = _ratio(p90[("monolithic", TARGET_AT_S)], p90[("monolithic", TARGET_BASE_S)])
    return {"shared_p90_10s_over_0_1s": shared, "monolithic_p90_10s_over_shared_10s": worse,
            "monolithic_p90_10s_over_0_1s": own,
            "met": shared is not None and worse is not None and own is not None
            and shared <= TARGET_SHARED_WITHIN and worse >= TARGET_MONOLITHIC_WORSE and own >= TARGET_MONOLITHIC_WORSE}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b > 0 else None
