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

Machine queues (Apollo): a launch marked ``queued`` waits in its machine's
queue, as on a live agent (corral/agent/machine_queue.py, whose pure
``ready`` decides here too): first come first served, each queued copy starts
the moment its limits fit beside the running tasks' limits on that machine,
at the same simulated time room freed, with no scheduling round in between,
and the start is reported to the master at once (which keeps the first copy
to start and cancels the others). A cancelled queued copy leaves the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from corral.agent.machine_queue import ready
from corral.master.commands import Effect, KillTask, ReclaimedCpu, StartTask
from corral.sim.engine import Engine
from corral.sim.trace import TraceJob

# Where the agents send a machine's task statuses (docs/agent-protocol.md's TaskStatus, abridged).
Report = Callable[[str, list[dict[str, Any]]], None]
# What one task of a job uses at a simulated time: (cpu millicores, memory bytes).
UsageAt = Callable[[TraceJob, float], tuple[int, int]]


HOLDING = frozenset({"running"})  # a simulated task holds room from its start to its end


@dataclass(frozen=True)
class Limits:
    cpu: int
    memory: int


@dataclass(frozen=True)
class _Launch:
    resources: Limits


@dataclass(frozen=True)
class _Record:
    """What machine_queue.ready reads of a task on a machine: its state and its launch's limits."""

    state: str
    launch: _Launch


def limits_of(launch: dict[str, Any]) -> Limits:
    r = launch.get("resources") or {}
    return Limits(int(r.get("cpu", 0)), int(r.get("memory", 0)))


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
        self.capacity: dict[str, dict[str, int]] = {}  # machine -> {"cpu", "memory"}: what queued work fits in
        self.limits: dict[str, Limits] = {}  # running task -> its launch's limits
        # machine -> task -> its queued launch (generation in it), first come first served
        self.queued: dict[str, dict[str, StartTask]] = {}
        self._kicked: set[str] = set()  # machines whose queue is looked at again at this simulated time
        self.started_from_queue = 0
        self.cancelled_in_queue = 0
        # Summed usage of running tasks whose usage the trace gives: cpu millicores, memory bytes.
        self.usage = np.zeros(2, dtype=np.int64)
        self.started = 0
        self.finished = 0
        self.killed = 0

    def add_machine(self, name: str, cpu: int, memory: int) -> None:
        self.capacity[name] = {"cpu": int(cpu), "memory": int(memory)}

    def send(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, StartTask):
                if effect.launch.get("queued"):
                    self._enqueue(effect)
                else:
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

    # ---- machine queues ------------------------------------------------------------------------

    def _enqueue(self, effect: StartTask) -> None:
        queue = self.queued.setdefault(effect.machine, {})
        held = queue.get(effect.task)
        if held is not None and held.launch["generation"] == effect.launch["generation"]:
            return  # the same launch again: a no-op, as on a live agent
        queue.pop(effect.task, None)  # a new generation goes to the back
        queue[effect.task] = effect
        self._kick(effect.machine)

    def _kick(self, machine: str) -> None:
        """Look at ``machine``'s queue once more at this simulated time, after the current command
        is done (so a start is reported to the master outside the command that freed the room)."""
        if machine in self.queued and machine not in self._kicked:
            self._kicked.add(machine)
            self.engine.at(self.engine.now, self._start_queued, machine)

    def _start_queued(self, machine: str) -> None:
        self._kicked.discard(machine)
        queue = self.queued.get(machine)
        if not queue:
            return
        records = {t: _Record("running", _Launch(self.limits[t])) for t in self.on.get(machine, ())}
        records.update({t: _Record("queued", _Launch(limits_of(e.launch))) for t, e in queue.items()})
        starting = ready(list(queue), records, self.capacity.get(machine), HOLDING)
        if not starting:
            return
        statuses = []
        for task in starting:
            effect = queue.pop(task)
            self._start(effect, moved=False)
            self.started_from_queue += 1
            statuses.append({"task_id": task, "state": "running", "generation": effect.launch["generation"]})
        if not queue:
            del self.queued[machine]
        self.report(machine, statuses)  # the master keeps the first copy to start, cancels the others

    def queued_copies(self) -> set[tuple[str, str]]:
        return {(task, machine) for machine, queue in self.queued.items() for task in queue}

    # ---- running ---------------------------------------------------------------------------------

    def _start(self, effect: StartTask, moved: bool = True) -> None:
        if moved:  # the master placed it here: a copy still running elsewhere (it moved it) is gone
            self._stop(effect.task, None)
        job = self.job_of(effect.task)
        generation = effect.launch["generation"]
        self.running[effect.task] = (effect.machine, generation, job)
        self.limits[effect.task] = limits_of(effect.launch)
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
        queue = self.queued.get(machine) if machine is not None else None
        if queue is not None and task in queue:  # a queued copy cancelled: it leaves the queue
            del queue[task]
            if not queue:
                del self.queued[machine]
            self.cancelled_in_queue += 1
            return
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
        if held[0] in self._kicked:  # the agent starts its queue as the room frees, before any round comes
            self._start_queued(held[0])

    def _drop(self, task: str, machine: str) -> None:
        del self.running[task]
        del self.limits[task]
        tasks = self.on[machine]
        del tasks[task]
        if not tasks:
            del self.on[machine]
        self._kick(machine)  # room freed: a queued copy there may start now

    def _count(self, job: TraceJob, sign: int) -> None:
        if job.cpu_usage is not None:
            self.usage[0] += sign * job.cpu_usage
        if job.memory_usage is not None:
            self.usage[1] += sign * job.memory_usage
