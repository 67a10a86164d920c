"""Online/offline colocation (Alibaba Sigma/Fuxi): the same workload in separate online and batch cells
vs. one colocated cell, each replayed through the master and scheduler (corral.sim.replay.Replay).

Three replays of one trace, all with the same policy (default ``utilisation-first``, which packs and
keeps whole machines empty, so the machines a cell needs show as the machines it keeps busy):

* ``online``: the latency-sensitive jobs alone; ``batch``: every other job alone — together the
  *separate* layout;
* ``colocated``: every job in one cell.

Each cell is the trace's machines twice over (:func:`roomy_cell`), so a layout's need is never cut
off by the cell's size.

Every replay runs with reclamation (Borg §5.5) as the live master does: every ``usage_interval_s``
each machine's simulated agent reports what its tasks use at that time
(:func:`corral.sim.traces.synthetic.usage_at`: services diurnal below their limits, batch flat);
the master's reservation book decays reservations, its reclamation step evicts reclaimed work the
machine's memory no longer holds and caps its CPU (``ReclaimedCpu``), and the scheduler places
non-production tasks in the room reservations leave (``ReclaimableFit``, marked ``reclaimed``).

At every metric sample each machine's tasks are run through the agent's own colocation policy
(corral.agent.colocation: latency-sensitive reserves first, batch capped to the rest; a reclaimed
task also at most what the master allows it) and memory check (corral.agent.eviction.choose_victims).
From that, per layout:

* **machines needed**: the most machines busy (running a task) at one sample;
* **average CPU usage**: CPU used over the samples / the CPU capacity of the busiest sample's machines
  (the layout's cells added up), and the same for the machines the online services run on (the
  online cell, or the colocated cell: the figure Alibaba reports going from about 10 % to over 40 %);
* **online short**: seconds (summed over machines) in which latency-sensitive tasks got less CPU
  than they demanded;
* **batch throttled**: core-seconds batch wanted beyond its caps (the agent's and the master's);
* **batch evictions**: reclaimed tasks the master evicted because the machine's memory reservations
  rose past its memory (back to pending, placed again); the agent's memory check at samples is
  counted apart (``agent_memory_evictions``: counted, not fed back);
* **batch work on reclaimed room**: CPU core-seconds batch got in tasks placed in reclaimed room, in
  % of all the CPU batch got;
* the checks the tests hold the replay to: ``memory_over_s`` (machine-seconds in which what the tasks
  use passed the machine's memory) and ``reservation_below_usage`` (task samples in which a task used
  more than the master reserved for it, where a usage report had set its reservation).

Deterministic for a trace, options and seed (everything but ``seconds``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from corral.sim.experiments.colocate_machines import SHARES, MachineModel, is_online, limits, reservations
from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace, TraceMachine
from corral.sim.traces.synthetic import usage_at

DEFAULT_POLICY = "utilisation-first"
USAGE_INTERVAL_S = 600.0  # agents' usage reports (Borg: every few seconds; the trace's usage moves over hours)
CELLS = ("online", "batch", "colocated")
LAYOUTS = {"separate": ("online", "batch"), "colocated": ("colocated",)}
SERIES = ("t", "busy_machines", "busy_cpu", "ls_demand", "ls_got", "batch_demand", "batch_got", "batch_reclaimed_got",
          "limits_cpu", "reserved_cpu", "busy_memory", "used_memory", "limits_memory", "reserved_memory")


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
    evictions: int = 0  # the master's (reclamation), from the replay's summary
    agent_evictions: int = 0  # the agent's memory check at samples (not fed back)
    reclaimed_core_s: float = 0.0  # CPU batch got in tasks placed in reclaimed room
    batch_core_s: float = 0.0
    online_core_s: float = 0.0
    memory_over_s: float = 0.0
    below_usage: int = 0
    # Sums over samples of (online, all) limits and use, cpu and memory: the calibration figures.
    shares: dict[str, list[float]] = field(default_factory=lambda: {k: [0.0, 0.0] for k in SHARES})
    seconds: float = 0.0


def run_cell(name: str, trace: Trace, config: ReplayConfig,
             progress: Callable[[float, float], None] | None = None) -> CellRun:
    sim = Replay(trace, config, usage_at=usage_at)
    model = MachineModel(trace, sim.engine.clock.now)
    run = CellRun(name)
    last = [0.0]

    def sample(now: float, horizon: float) -> None:
        state = sim.core.state
        reclaimed = {t: state.tasks[t].reclaimed for t in sim.agents.running}
        totals, evictions = model.sample(sim.agents.running, now, reclaimed, sim.agents.reclaimed_cpu)
        limits_cpu, limits_memory = limits(sim)
        below, reserved_cpu, reserved_memory = reservations(sim, now)
        dt = now - last[0]
        last[0] = now
        run.series.append((now, totals["busy_machines"], totals["busy_cpu"], totals["ls_demand"], totals["ls_got"],
                           totals["batch_demand"], totals["batch_got"], totals["batch_reclaimed_got"],
                           limits_cpu, reserved_cpu, totals["busy_memory"], totals["used_memory"],
                           limits_memory, reserved_memory))
        run.online_short_s += totals["short"] * dt
        run.batch_throttled_core_s += totals["throttled"] / 1000 * dt
        run.reclaimed_core_s += totals["batch_reclaimed_got"] / 1000 * dt
        run.batch_core_s += totals["batch_got"] / 1000 * dt
        run.online_core_s += totals["ls_got"] / 1000 * dt
        run.memory_over_s += totals["memory_over"] * dt
        run.below_usage += below
        run.agent_evictions += evictions
        for key in SHARES:
            run.shares[key][0] += totals[f"ls_{key}"]
            run.shares[key][1] += totals[f"all_{key}"]
        if progress:
            progress(now, horizon)

    started = time.perf_counter()
    result = sim.run(sample)
    run.seconds = time.perf_counter() - started
    run.summary = result.summary
    run.evictions = result.summary.get("reclaim_evictions", 0)
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
    reclaimed, batch = sum(r.reclaimed_core_s for r in runs), sum(r.batch_core_s for r in runs)
    work = batch + sum(r.online_core_s for r in runs)
    return {
        "machines_needed": int(machines),
        "avg_cpu_usage_pct": _r(100 * used / capacity) if capacity else None,
        "online_machines_cpu_usage_pct": _r(100 * online_used / online_capacity) if online_capacity else None,
        "online_short_s": _r(sum(r.online_short_s for r in runs), 1),
        "batch_throttled_core_s": _r(sum(r.batch_throttled_core_s for r in runs), 1),
        "batch_evictions": sum(r.evictions for r in runs),
        "agent_memory_evictions": sum(r.agent_evictions for r in runs),
        "batch_on_reclaimed_pct": _r(100 * reclaimed / batch) if batch else None,
        "work_on_reclaimed_pct": _r(100 * reclaimed / work) if work else None,
        "memory_over_s": _r(sum(r.memory_over_s for r in runs), 1),
        "reservation_below_usage": sum(r.below_usage for r in runs),
        "pending_at_end": sum(r.summary["pending_at_end"] for r in runs),
        "pending_delay_p90_s": max(r.summary["pending_delay_s"]["p90"] for r in runs),
        "placements": sum(r.summary["placements"] for r in runs),
    }


# Borg (Verma et al. 2015, §2.1), a typical cell: production holds about 70 % of the CPU and 55 % of the
# memory allocated (limits), and accounts for about 60 % of the CPU and 85 % of the memory used.
BORG_PROD_SHARES = {"cpu_limits": 70, "cpu_usage": 60, "memory_limits": 55, "memory_usage": 85}


def calibration(run: CellRun) -> dict[str, Any]:
    """The online (production) services' share of the colocated cell's limits and use, averaged over
    the samples, beside Borg's typical cell (traces/README.md)."""
    return {f"prod_share_of_{key}_pct": _r(100 * part / whole) if whole else None
            for key, (part, whole) in run.shares.items()} | {"borg_typical_cell_pct": BORG_PROD_SHARES}


def colocate(trace: Trace, config: ReplayConfig = ReplayConfig(policy=DEFAULT_POLICY),
             progress: Callable[[str, float, float], None] | None = None) -> tuple[dict[str, Any], list[CellRun]]:
    """Replay the three cells; the summary (deterministic but for ``seconds``) and the runs."""
    started = time.perf_counter()
    traces = split(trace)
    # One span and one sample clock for all three cells, so their series line up (a cell of services
    # alone would otherwise end with its last arrival).
    until = config.until if config.until is not None else trace.horizon
    config = replace(config, until=until, sample_interval_s=config.sample_interval_s or max(until / 500, 1.0),
                     usage_interval_s=config.usage_interval_s or USAGE_INTERVAL_S)
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
                           "usage_cpu_mean": r.summary["usage"]["cpu"]["mean"], "evictions": r.evictions,
                           "usage_reports": r.summary.get("usage_reports", 0)} for r in runs},
        "usage_interval_s": config.usage_interval_s,
        "calibration": calibration(by_name["colocated"]),
        "notes": [f"reclamation as the live master runs it: agents report usage every {config.usage_interval_s:g} s, "
                  "the master's reservations decay from the limit towards the usage peak plus a margin, "
                  "non-production tasks are placed in the room they leave",
                  f"each cell is the trace's {len(trace.machines)} machines and a copy of each, so that no layout "
                  "is cut off by the cell's size; machines needed = the most machines busy at one sample",
                  "batch evictions: the master's, of reclaimed tasks whose memory the others' rising reservations "
                  "took back; agent_memory_evictions: the agent's memory check at samples, counted, not fed back",
                  "online short counts CPU only: the agent gives latency-sensitive tasks the CPU first and production "
                  "is placed against its limits, so services fall short only if their own demand passes the machine",
                  *trace.notes],
    }
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary, runs
