"""Simulated agents: the master's agent transport in the simulator.

A started task runs for its trace duration and then reports itself
finished, as a real agent's poll would; a killed task stops at once. The
agents keep what the running tasks use (from the trace, where it says) so
the metrics can read usage the way the live master reads agent reports.
Effects arrive with no delay: the simulator studies scheduling, not the
network.

Usage reports (reclamation): :meth:`SimulatedAgents.usage_report` is what a
machine's agent would report its running tasks using at a moment — the poll's
``usage``, which the replay hands the master as a ``UsageReport`` (the same
command a live agent's poll becomes). What a task uses at ``t`` comes from
``usage_at`` (default :func:`trace_usage`: the trace's flat figures; the
synthetic trace's services are diurnal). The master's ``ReclaimedCpu`` effect
is kept per machine (:attr:`SimulatedAgents.reclaimed_cpu`): the CPU each task
in reclaimed room may use, which a real agent writes to the task's cgroup.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from corral.master.commands import Effect, KillTask, ReclaimedCpu, StartTask
from corral.sim.engine import Engine
from corral.sim.trace import TraceJob

# Where the agents send a machine's task statuses (docs/agent-protocol.md's TaskStatus, abridged).
Report = Callable[[str, list[dict[str, Any]]], None]
# What one task of a job uses at a simulated time: (cpu millicores, memory bytes).
UsageAt = Callable[[TraceJob, float], tuple[int, int]]


def trace_usage(job: TraceJob, t: float) -> tuple[int, int]:
    """The trace's usage of one task of ``job`` (the limit where the trace gives none: nothing to reclaim)."""
    return (job.cpu if job.cpu_usage is None else job.cpu_usage,
            job.memory if job.memory_usage is None else job.memory_usage)


class SimulatedAgents:
    def __init__(self, engine: Engine, job_of: Callable[[str], TraceJob], report: Report,
                 usage_at: UsageAt = trace_usage):
        self.engine = engine
        self.usage_at = usage_at
        self.job_of = job_of  # task name -> the trace job it belongs to
        self.report = report  # (machine, [TaskStatus]) -> the master, as an AgentReport
        self.running: dict[str, tuple[str, int, TraceJob]] = {}  # task -> (machine, generation, job)
        self.on: dict[str, dict[str, None]] = {}  # machine -> its running tasks (insertion-ordered set)
        self.reclaimed_cpu: dict[str, dict[str, int]] = {}  # machine -> task -> millicores (ReclaimedCpu)
        # Summed usage of running tasks whose usage the trace gives: cpu millicores, memory bytes.
        self.usage = np.zeros(2, dtype=np.int64)
        self.started = 0
        self.finished = 0
        self.killed = 0

    def send(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, StartTask):
                self._start(effect)
            elif isinstance(effect, KillTask):
                self._stop(effect.task, effect.machine)
            elif isinstance(effect, ReclaimedCpu):
                if effect.cpu:
                    self.reclaimed_cpu[effect.machine] = dict(effect.cpu)
                else:
                    self.reclaimed_cpu.pop(effect.machine, None)

    def usage_report(self, machine: str, now: float) -> dict[str, tuple[int, int, int]]:
        """What ``machine``'s agent reports its running tasks using at ``now``: a UsageReport's
        ``usage`` (task -> (generation, cpu_milli, memory_bytes))."""
        out = {}
        for task in self.on.get(machine, ()):
            _, generation, job = self.running[task]
            cpu, memory = self.usage_at(job, now)
            out[task] = (generation, int(cpu), int(memory))
        return out

    def _start(self, effect: StartTask) -> None:
        # A copy still running elsewhere (the master moved it) is gone with the new start.
        self._stop(effect.task, None)
        job = self.job_of(effect.task)
        generation = effect.launch["generation"]
        self.running[effect.task] = (effect.machine, generation, job)
        self.on.setdefault(effect.machine, {})[effect.task] = None
        self._count(job, +1)
        self.started += 1
        duration = self.duration(effect, job)
        if duration is not None:
            self.engine.after(duration, self._finish, effect.task, generation)

    def duration(self, effect: StartTask, job: TraceJob) -> float | None:
        """How long this start runs (the trace's duration; a test may slow some starts down)."""
        return job.duration

    def _stop(self, task: str, machine: str | None) -> None:
        held = self.running.get(task)
        if held is None or (machine is not None and held[0] != machine):
            return
        self._drop(task, held[0])
        self._count(held[2], -1)
        self.killed += 1

    def _finish(self, task: str, generation: int) -> None:
        held = self.running.get(task)
        if held is None or held[1] != generation:
            return  # killed or restarted since: this run never finishes
        self._drop(task, held[0])
        self._count(held[2], -1)
        self.finished += 1
        self.report(held[0], [{"task_id": task, "state": "finished", "generation": generation, "exit_code": 0}])

    def _drop(self, task: str, machine: str) -> None:
        del self.running[task]
        tasks = self.on[machine]
        del tasks[task]
        if not tasks:
            del self.on[machine]

    def _count(self, job: TraceJob, sign: int) -> None:
        if job.cpu_usage is not None:
            self.usage[0] += sign * job.cpu_usage
        if job.memory_usage is not None:
            self.usage[1] += sign * job.memory_usage
