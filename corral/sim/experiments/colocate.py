"""Online/offline colocation (Alibaba Sigma/Fuxi): the same workload in separate online and batch cells
vs. one colocated cell, each replayed through the master and scheduler (corral.sim.replay.Replay).

Three replays of one trace, all with the same policy (default ``utilisation-first``, which packs and
keeps whole machines empty, so the machines a cell needs show as the machines it keeps busy):

* ``online``: the latency-sensitive jobs alone; ``batch``: every other job alone — together the
  *separate* layout;
* ``colocated``: every job in one cell.

Each cell is the trace's machines twice over (:func:`roomy_cell`), so a layout's need is never cut
off by the cell's size.

At every metric sample each machine's tasks are run through the agent's own colocation policy
(corral.agent.colocation: latency-sensitive reserves first, batch capped to the rest) and memory
check (corral.agent.eviction.choose_victims), with each task using what the trace says it uses
at that time (:func:`corral.sim.traces.synthetic.cpu_usage_at`: services diurnal, below their
limits). From that, per layout:

* **machines needed**: the most machines busy (running a task) at one sample;
* **average CPU usage**: CPU used over the samples / the CPU capacity of the busiest sample's machines
  (the layout's cells added up), and the same for the machines the online services run on (the
  online cell, or the colocated cell: the figure Alibaba reports going from about 10 % to over 40 %);
* **online short**: seconds (summed over machines) in which latency-sensitive tasks got less CPU
  than they demanded;
* **batch throttled**: core-seconds batch wanted beyond its caps;
* **batch evictions**: batch tasks the memory check would evict at a sample (counted, not fed
  back to the master);
* **batch work on reclaimed room**: not available — the scheduler places every task against its
  limit here; the column is null with a note until reclamation placement is in the scheduler.

Deterministic for a trace, options and seed (everything but ``seconds``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from corral.agent.colocation import ColocationConfig, ColocationPolicy, TaskCpu
from corral.agent.eviction import Candidate, MemoryReading, choose_victims
from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace, TraceJob, TraceMachine
from corral.sim.traces.synthetic import cpu_usage_at

DEFAULT_POLICY = "utilisation-first"
MEMORY_THRESHOLD = 0.95  # the agent's default memory pressure threshold
CELLS = ("online", "batch", "colocated")
LAYOUTS = {"separate": ("online", "batch"), "colocated": ("colocated",)}
RECLAIMED_NOTE = ("batch_on_reclaimed_pct is null: the scheduler places every task against its limit here, so no "
                  "batch work runs on reclaimed room; it needs reclamation placement in the scheduler")
SERIES = ("t", "busy_machines", "busy_cpu", "ls_demand", "ls_got", "batch_demand", "batch_got")


def is_online(job: TraceJob) -> bool:
    return job.appclass == "latency-sensitive"


def roomy_cell(machines: list[TraceMachine]) -> list[TraceMachine]:
    """The trace's machines and a copy of each (``<name>-c``): every cell has room to spare, so the
    machines a layout needs are never cut off by the cell's size."""
    return [*machines, *(replace(m, name=f"{m.name}-c") for m in machines)]


def split(trace: Trace) -> dict[str, Trace]:
    """The three cells' traces: the same (doubled) machines, the online jobs, the rest, and everything."""
    online = [j for j in trace.jobs if is_online(j)]
    batch = [j for j in trace.jobs if not is_online(j)]
    cell = roomy_cell(trace.machines)
    return {name: Trace(f"{trace.name}-{name}", cell, jobs, trace.source, list(trace.notes))
            for name, jobs in (("online", online), ("batch", batch), ("colocated", list(trace.jobs)))}


@dataclass
class CellRun:
    name: str
    summary: dict[str, Any] = field(default_factory=dict)
    series: list[tuple[float, ...]] = field(default_factory=list)  # SERIES per sample
    online_short_s: float = 0.0
    batch_throttled_core_s: float = 0.0
    evictions: int = 0
    seconds: float = 0.0


class MachineModel:
    """One sample of every machine: the agent's colocation policy and memory check on trace usage."""

    def __init__(self, trace: Trace, clock: Callable[[], float]):
        self.capacity = {m.name: (m.cpu, m.memory) for m in trace.machines}
        self.clock = clock
        self.policies: dict[str, ColocationPolicy] = {}

    def policy(self, machine: str) -> ColocationPolicy:
        policy = self.policies.get(machine)
        if policy is None:
            policy = self.policies[machine] = ColocationPolicy(
                ColocationConfig(capacity_milli=self.capacity[machine][0]), self.clock)
        return policy

    def sample(self, running: dict[str, tuple[str, int, TraceJob]], now: float) -> tuple[dict[str, float], int]:
        by_machine: dict[str, list[tuple[str, TraceJob]]] = defaultdict(list)
        for task, (machine, _, job) in running.items():
            by_machine[machine].append((task, job))
        totals = dict.fromkeys(("busy_cpu", "ls_demand", "ls_got", "batch_demand", "batch_got", "short", "throttled"), 0.0)
        evictions = 0
        for machine in sorted(by_machine):
            tasks = by_machine[machine]
            cpu, memory = self.capacity[machine]
            use = {task: cpu_usage_at(job, now) for task, job in tasks}
            decision = self.policy(machine).decide(
                [TaskCpu(task, is_online(job), job.cpu, use[task]) for task, job in tasks])
            ls_demand = sum(use[t] for t, j in tasks if is_online(j))
            batch_demand = sum(use[t] for t, j in tasks if not is_online(j))
            batch_capped = sum(min(use[t], decision.caps.get(t) or j.cpu) for t, j in tasks if not is_online(j))
            ls_got = min(ls_demand, cpu)
            batch_got = min(batch_capped, cpu - ls_got)
            totals["busy_cpu"] += cpu
            totals["ls_demand"] += ls_demand
            totals["ls_got"] += ls_got
            totals["batch_demand"] += batch_demand
            totals["batch_got"] += batch_got
            totals["short"] += ls_got < ls_demand
            totals["throttled"] += batch_demand - batch_got
            used = sum(j.memory if j.memory_usage is None else j.memory_usage for _, j in tasks)
            reading = MemoryReading(memory, max(memory - used, 0))
            candidates = [Candidate(t, j.priority, j.memory_usage or j.memory, 0.0, is_online(j)) for t, j in tasks]
            evictions += sum(1 for t in choose_victims(reading, MEMORY_THRESHOLD, candidates)
                             if not is_online(dict(tasks)[t]))
        totals["busy_machines"] = len(by_machine)
        return totals, evictions


def run_cell(name: str, trace: Trace, config: ReplayConfig,
             progress: Callable[[float, float], None] | None = None) -> CellRun:
    sim = Replay(trace, config)
    model = MachineModel(trace, sim.engine.clock.now)
    run = CellRun(name)
    last = [0.0]

    def sample(now: float, horizon: float) -> None:
        totals, evictions = model.sample(sim.agents.running, now)
        dt = now - last[0]
        last[0] = now
        run.series.append((now, totals["busy_machines"], totals["busy_cpu"], totals["ls_demand"], totals["ls_got"],
                           totals["batch_demand"], totals["batch_got"]))
        run.online_short_s += totals["short"] * dt
        run.batch_throttled_core_s += totals["throttled"] / 1000 * dt
        run.evictions += evictions
        if progress:
            progress(now, horizon)

    started = time.perf_counter()
    result = sim.run(sample)
    run.seconds = time.perf_counter() - started
    run.summary = result.summary
    return run


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(float(x), digits)


def layout_figures(runs: list[CellRun]) -> dict[str, Any]:
    """The comparison row of one layout (its cells side by side)."""
    machines = sum(max((s[1] for s in r.series), default=0) for r in runs)
    capacity = sum(max((s[2] for s in r.series), default=0) for r in runs)
    samples = max(len(r.series) for r in runs)
    used = sum(sum(s[4] + s[6] for s in r.series) for r in runs) / max(samples, 1)
    # The machines online services run on: the online cell, or the colocated cell (Alibaba's figure).
    (online,) = [r for r in runs if r.name in ("online", "colocated")]
    online_capacity = max((s[2] for s in online.series), default=0)
    online_used = sum(s[4] + s[6] for s in online.series) / max(len(online.series), 1)
    return {
        "machines_needed": int(machines),
        "avg_cpu_usage_pct": _r(100 * used / capacity) if capacity else None,
        "online_machines_cpu_usage_pct": _r(100 * online_used / online_capacity) if online_capacity else None,
        "online_short_s": _r(sum(r.online_short_s for r in runs), 1),
        "batch_throttled_core_s": _r(sum(r.batch_throttled_core_s for r in runs), 1),
        "batch_evictions": sum(r.evictions for r in runs),
        "batch_on_reclaimed_pct": None,
        "pending_at_end": sum(r.summary["pending_at_end"] for r in runs),
        "pending_delay_p90_s": max(r.summary["pending_delay_s"]["p90"] for r in runs),
        "placements": sum(r.summary["placements"] for r in runs),
    }


def colocate(trace: Trace, config: ReplayConfig = ReplayConfig(policy=DEFAULT_POLICY),
             progress: Callable[[str, float, float], None] | None = None) -> tuple[dict[str, Any], list[CellRun]]:
    """Replay the three cells; the summary (deterministic but for ``seconds``) and the runs."""
    started = time.perf_counter()
    traces = split(trace)
    # One span and one sample clock for all three cells, so their series line up (a cell of services
    # alone would otherwise end with its last arrival).
    until = config.until if config.until is not None else trace.horizon
    config = replace(config, until=until, sample_interval_s=config.sample_interval_s or max(until / 500, 1.0))
    runs = [run_cell(name, traces[name], config, (lambda n, h, c=name: progress(c, n, h)) if progress else None)
            for name in CELLS]
    by_name = {r.name: r for r in runs}
    layouts = {layout: layout_figures([by_name[c] for c in cells]) for layout, cells in LAYOUTS.items()}
    sep, col = layouts["separate"], layouts["colocated"]
    saved = sep["machines_needed"] - col["machines_needed"]
    summary = {
        "experiment": "colocate",
        "trace": trace.name,
        "policy": config.policy,
        "seed": config.seed,
        "machines": len(trace.machines),
        "tasks": {"online": traces["online"].task_count(), "batch": traces["batch"].task_count()},
        "layouts": layouts,
        "machines_saved": saved,
        "machines_saved_pct": _r(100 * saved / sep["machines_needed"], 2) if sep["machines_needed"] else None,
        "cells": {r.name: {"machines_needed": int(max((s[1] for s in r.series), default=0)),
                           "placements": r.summary["placements"], "pending_at_end": r.summary["pending_at_end"],
                           "usage_cpu_mean": r.summary["usage"]["cpu"]["mean"]} for r in runs},
        "notes": [RECLAIMED_NOTE,
                  f"each cell is the trace's {len(trace.machines)} machines and a copy of each, so that no layout "
                  "is cut off by the cell's size; machines needed = the most machines busy at one sample",
                  "batch evictions are counted at samples by the agent's memory check, not fed back to the master",
                  *trace.notes],
    }
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary, runs
