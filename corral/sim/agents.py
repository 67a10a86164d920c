"""Simulated agents: the master's agent transport in the simulator.

A started task runs for its trace duration and then reports itself
finished, as a real agent's poll would; a killed task stops at once. The
agents keep what the running tasks use (from the trace, where it says) so
the metrics can read usage the way the live master reads agent reports.
Effects arrive with no delay: the simulator studies scheduling, not the
network.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from corral.master.commands import Effect, KillTask, StartTask
from corral.sim.engine import Engine
from corral.sim.trace import TraceJob

# Where the agents send a machine's task statuses (docs/agent-protocol.md's TaskStatus, abridged).
Report = Callable[[str, list[dict[str, Any]]], None]


class SimulatedAgents:
    def __init__(self, engine: Engine, job_of: Callable[[str], TraceJob], report: Report):
        self.engine = engine
        self.job_of = job_of  # task name -> the trace job it belongs to
        self.report = report  # (machine, [TaskStatus]) -> the master, as an AgentReport
        self.running: dict[str, tuple[str, int, TraceJob]] = {}  # task -> (machine, generation, job)
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
            # ReclaimedCpu: simulated tasks use what the trace says; nothing to throttle

    def _start(self, effect: StartTask) -> None:
        # A copy still running elsewhere (the master moved it) is gone with the new start.
        self._stop(effect.task, None)
        job = self.job_of(effect.task)
        generation = effect.launch["generation"]
        self.running[effect.task] = (effect.machine, generation, job)
        self._count(job, +1)
        self.started += 1
        if job.duration is not None:
            self.engine.after(job.duration, self._finish, effect.task, generation)

    def _stop(self, task: str, machine: str | None) -> None:
        held = self.running.get(task)
        if held is None or (machine is not None and held[0] != machine):
            return
        del self.running[task]
        self._count(held[2], -1)
        self.killed += 1

    def _finish(self, task: str, generation: int) -> None:
        held = self.running.get(task)
        if held is None or held[1] != generation:
            return  # killed or restarted since: this run never finishes
        del self.running[task]
        self._count(held[2], -1)
        self.finished += 1
        self.report(held[0], [{"task_id": task, "state": "finished", "generation": generation, "exit_code": 0}])

    def _count(self, job: TraceJob, sign: int) -> None:
        if job.cpu_usage is not None:
            self.usage[0] += sign * job.cpu_usage
        if job.memory_usage is not None:
            self.usage[1] += sign * job.memory_usage
