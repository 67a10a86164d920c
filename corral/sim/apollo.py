"""``corral sim apollo``: one batch workload with and without Apollo's mechanisms, through the real master.

Four variants replay the same trace with the same injected stragglers (Replay,
corral/sim/replay.py; the master's own code decides everything):

=============  =====================================================================
baseline       the default policy; no machine queues; ticks, but no copies
estimates      the completion-time scorer (corral/sched/scorers/completion_time.py)
               beside the default one, and machine queues (queue_placement.py)
               (each queued task waits on one machine: no moves)
corrections    the straggler rule's copies (corral/master/speculation.py)
apollo         both: completion-time scoring, machine queues and their moves
               (duplicate scheduling), straggler copies
=============  =====================================================================

Stragglers (``FRACTION:SLOWDOWN``): a task's first run lasts SLOWDOWN times its
trace duration when a hash of (seed, task) falls below FRACTION; copies and
later runs take the trace's duration (a straggler is slow where and when it
first ran, as a bad machine or a hot disk makes it; Apollo §2, Mantri).

Extra CPU (``extra_cpu_pct``): the core-seconds the duplicate copies ran (every
speculative copy that started, won or lost, from start to finish or kill), as a
percentage of the core-seconds of all other runs in the same variant.
``cpu_vs_baseline_pct`` compares a variant's core-seconds of every run with the
baseline's (negative: it spent less, since a slow first run is killed when its
copy wins).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, replace
from typing import Any, Callable

from corral.master.copies import parse_copy_id
from corral.master.queue_placement import MachineQueueConfig
from corral.master.records import job_id
from corral.model.job import TaskState
from corral.sched.speculation import SpeculationConfig
from corral.sim.agents import SimulatedAgents
from corral.sim.apollo_metrics import ApolloFigures, job_completions, percentile
from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace, TraceJob

VARIANTS = ("baseline", "estimates", "corrections", "apollo")
BASE_POLICY = "hybrid"
ESTIMATES_POLICY = "hybrid=1,completion-time=1"  # the default scorer, and Apollo's completion time beside it
NO_COPIES = SpeculationConfig(per_job=0, per_cell=0)
QUEUES = MachineQueueConfig(enabled=True)
COPIES_PER_JOB = 10  # a job of hundreds of tasks has tens of stragglers: two at a time would serialise them
COPIES_PER_MACHINE = 2  # the cell's budget of copies running at once, per machine of the cell


def study_speculation(trace: Trace) -> SpeculationConfig:
    """The straggler rule the corrections variants run: the master's defaults (1.5 x the finished
    siblings' p90, at least 5 finished), with budgets sized to the cell, avoiding the failure domains
    the cell has more than one of."""
    return SpeculationConfig(per_job=COPIES_PER_JOB, per_cell=COPIES_PER_MACHINE * len(trace.machines),
                             avoid=tuple(d for d in ("rack", "power") if _domains(trace, d) > 1))


def _domains(trace: Trace, attribute: str) -> int:
    """How many values of ``attribute`` the trace's machines have (a loader's cell of 150 machines is
    four racks in one power domain: a copy avoids the rack, as the cell has no other power domain)."""
    return len({dict(m.attributes).get(attribute) for m in trace.machines})


@dataclass(frozen=True)
class Stragglers:
    fraction: float = 0.05
    slowdown: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.fraction <= 1:
            raise ValueError(f"straggler fraction: expected 0 to 1, got {self.fraction}")
        if not 1 <= self.slowdown < float("inf"):
            raise ValueError(f"straggler slowdown: expected at least 1, got {self.slowdown}")

    def slowed(self, task: str) -> bool:
        """Is ``task``'s first run a straggler? A seeded hash, so every variant slows the same tasks."""
        return zlib.crc32(f"{self.seed}:{task}".encode()) < self.fraction * 2**32

    @property
    def text(self) -> str:
        return f"{self.fraction:g}:{self.slowdown:g}"


def parse_stragglers(text: str, seed: int = 0) -> Stragglers:
    """``0.05:5`` -> 5 % of tasks' first runs 5x slower. ValueError (one line) otherwise."""
    fraction, sep, slowdown = str(text).partition(":")
    try:
        if not sep:
            raise ValueError
        return Stragglers(float(fraction), float(slowdown), seed)
    except ValueError as e:
        detail = f" ({e})" if str(e) else ""
        raise ValueError(f"--stragglers: expected FRACTION:SLOWDOWN with FRACTION in 0..1 and SLOWDOWN >= 1 "
                         f"(0.05:5), got {text!r}{detail}") from None


class StragglingAgents(SimulatedAgents):
    """The simulated agents with stragglers injected, counting the core-seconds each run takes."""

    def __init__(self, *args: Any, stragglers: Stragglers, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.stragglers = stragglers
        self.ran: set[str] = set()  # tasks whose first run started
        self.slowed = 0
        self.since: dict[str, float] = {}  # running task or copy -> when it started
        self.copy_core_s = 0.0  # the duplicates' core-seconds
        self.other_core_s = 0.0

    def duration(self, effect: Any, job: TraceJob) -> float | None:
        if job.duration is None or parse_copy_id(effect.task) is not None or effect.task in self.ran:
            return job.duration
        self.ran.add(effect.task)
        if self.stragglers.slowed(effect.task):
            self.slowed += 1
            return job.duration * self.stragglers.slowdown
        return job.duration

    def _start(self, effect: Any, moved: bool = True) -> None:
        super()._start(effect, moved)
        self.since[effect.task] = self.engine.now

    def _drop(self, task: str, machine: str) -> None:
        core_s = self.limits[task].cpu / 1000 * (self.engine.now - self.since.pop(task))
        if parse_copy_id(task) is not None:
            self.copy_core_s += core_s
        else:
            self.other_core_s += core_s
        super()._drop(task, machine)


class ApolloReplay(Replay):
    def __init__(self, trace: Trace, config: ReplayConfig, stragglers: Stragglers):
        super().__init__(trace, config)
        self.agents = StragglingAgents(self.engine, self._job_of_task, self._report, stragglers=stragglers)
        self.core.transport = self.agents
        self.figures = ApolloFigures(self.core.state)

    def _apply(self, out: Any) -> None:
        super()._apply(out)
        self.figures.observe(out.events)


def variant_config(name: str, seed: int, speculation: SpeculationConfig, queues: MachineQueueConfig,
                   validate: bool = False) -> ReplayConfig:
    if name not in VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS)}, got {name!r}")
    estimates = name in ("estimates", "apollo")
    corrections = name in ("corrections", "apollo")
    if estimates and not corrections:
        queues = replace(queues, max_copies=1)  # a task waits on one machine: no duplicate scheduling
    return ReplayConfig(policy=ESTIMATES_POLICY if estimates else BASE_POLICY, seed=seed, tick_interval_s=1.0,
                        speculation=speculation if corrections else NO_COPIES,
                        machine_queues=queues if estimates else None, validate=validate)


def run_variant(trace: Trace, name: str, stragglers: Stragglers, *, seed: int = 0,
                speculation: SpeculationConfig = SpeculationConfig(), queues: MachineQueueConfig = QUEUES,
                validate: bool = False) -> tuple[dict[str, Any], ApolloReplay]:
    started = time.perf_counter()
    replay = ApolloReplay(trace, variant_config(name, seed, speculation, queues, validate), stragglers)
    result = replay.run()
    agents, state = replay.agents, replay.core.state
    arrivals = {job_id(j.name, j.user): j.arrival for j in trace.jobs}
    completions = job_completions(state, arrivals)
    core_s = agents.copy_core_s + agents.other_core_s
    figures = {
        "job_completion_p50_s": percentile(completions, 50),
        "job_completion_p90_s": percentile(completions, 90),
        "job_completion_p99_s": percentile(completions, 99),
        "task_wait_p50_s": percentile(result.delays, 50),
        "task_wait_p90_s": percentile(result.delays, 90),
        "extra_cpu_pct": round(100 * agents.copy_core_s / agents.other_core_s, 3) if agents.other_core_s else 0.0,
        **replay.figures.figures(),
        "jobs_succeeded": len(completions),
        "jobs": len(arrivals),
        "tasks_finished": sum(1 for t in state.tasks.values() if t.state is TaskState.DEAD),
        "stragglers": agents.slowed,
        "core_s": round(core_s, 1),
        "started_from_queue": agents.started_from_queue,
        "simulated_s": result.summary["simulated_s"],
        "seconds": round(time.perf_counter() - started, 2),
    }
    return figures, replay


def apollo_experiment(trace: Trace, stragglers: Stragglers, *, seed: int = 0, variants: tuple[str, ...] = VARIANTS,
                      speculation: SpeculationConfig | None = None, queues: MachineQueueConfig = QUEUES,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every variant on ``trace``; their figures by name, and how apollo compares with baseline."""
    started = time.perf_counter()
    speculation = speculation or study_speculation(trace)
    out: dict[str, Any] = {"trace": trace.name, "machines": len(trace.machines), "jobs": len(trace.jobs),
                           "tasks": trace.task_count(), "seed": seed, "stragglers": stragglers.text,
                           "speculation": {"factor": speculation.factor, "quantile": speculation.quantile,
                                           "min_finished": speculation.min_finished,
                                           "per_job": speculation.per_job, "per_cell": speculation.per_cell,
                                           "avoid": list(speculation.avoid)}}
    completions: dict[str, list[float]] = {}
    for name in variants:
        if progress:
            progress(name)
        figures, replay = run_variant(trace, name, stragglers, seed=seed, speculation=speculation, queues=queues)
        out[name] = figures
        completions[name] = sorted(job_completions(replay.core.state, {job_id(j.name, j.user): j.arrival
                                                                      for j in trace.jobs}))
    base = out["baseline"]["core_s"] if "baseline" in out else None
    for name in variants:
        out[name]["cpu_vs_baseline_pct"] = round(100 * (out[name]["core_s"] - base) / base, 3) if base else None
    if base is not None and "apollo" in out and out["baseline"]["job_completion_p90_s"]:
        lower = 1 - out["apollo"]["job_completion_p90_s"] / out["baseline"]["job_completion_p90_s"]
        out["target"] = {"apollo_p90_lower_pct": round(100 * lower, 2),
                         "apollo_extra_cpu_pct": out["apollo"]["extra_cpu_pct"],
                         "met": lower >= 0.30 and out["apollo"]["extra_cpu_pct"] <= 5.0}
    out["completions"] = completions  # for the CDF plot and CSV (left out of the JSON line)
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def limit_jobs(trace: Trace, limit: int | None) -> Trace:
    """The first ``limit`` jobs by arrival (the trace's order), on the same machines."""
    if limit is None:
        return trace
    if limit < 1:
        raise ValueError(f"--limit-jobs: expected at least 1, got {limit}")
    return replace(trace, jobs=trace.jobs[:limit])
