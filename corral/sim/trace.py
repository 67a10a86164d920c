"""The simulator's one internal trace format; every loader produces it (corral/sim/README.md).

A :class:`Trace` is a cell (machines) and a workload (jobs arriving over
time). A job is ``tasks`` identical tasks, as in corral; a trace row that
stands for several instances of one shape becomes one job. Times are
seconds from the start of the trace. Resources use corral's units:
millicores, bytes, whole GPUs and a per-GPU milli share.

Whatever a loader had to estimate (a cell the trace does not describe, a
usage the trace does not record) it says in ``Trace.notes``; experiments
print those notes with their results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from corral.model.machine import HOST
from corral.model.priority import MAX_PRIORITY, MIN_PRIORITY
from corral.model.resources import GPU_MILLI_WHOLE
from corral.model.spec import NAME, NAME_RULE

_MACHINE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")  # what RegisterMachine accepts


class TraceError(ValueError):
    """A trace file that cannot be read: names the file, the line (1-based, 0 if none) and what was expected."""

    def __init__(self, path: str, line: int, message: str):
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")


@dataclass(frozen=True, slots=True)
class TraceMachine:
    name: str
    cpu: int  # millicores
    memory: int  # bytes
    gpu: int = 0  # whole GPUs
    gpu_model: str = ""
    attributes: tuple[tuple[str, str], ...] = ()  # e.g. (("rack", "r3"), ("shape", "large"))


@dataclass(frozen=True, slots=True)
class TraceJob:
    name: str  # unique in the trace; a job name as the spec takes it (corral.model.spec.NAME)
    user: str
    arrival: float  # seconds from the trace start
    cpu: int  # millicores per task: what it asks for (its limit)
    memory: int  # bytes per task
    tasks: int = 1  # identical tasks
    # Seconds each task runs once started; None: it runs until ``departure`` or the end of the simulation.
    duration: float | None = None
    # Absolute time the job leaves whatever its state (the trace's deletion time); None: no such time.
    departure: float | None = None
    gpu: int = 0  # whole GPUs per task (1 with gpu_milli < 1000 for a share of one GPU)
    gpu_milli: int = GPU_MILLI_WHOLE
    gpu_models: tuple[str, ...] = ()  # any of these models; () for any
    priority: int = 2  # corral's 0..11 (bands: 0-1 best-effort, 2-8 batch, 9-10 production, 11 monitoring)
    appclass: str = "batch"  # "batch" or "latency-sensitive"
    # What a task typically uses, where the trace knows or the loader estimated it (see Trace.notes).
    cpu_usage: int | None = None
    memory_usage: int | None = None
    max_per_machine: int | None = None  # at most this many of the job's tasks on one machine
    # "allocset": an alloc set of `tasks` allocs of cpu/memory each, which run nothing themselves; a job
    # with `alloc` runs its tasks inside that alloc set's allocs (same user; task i in alloc i, or
    # `alloc_placement` "any": any alloc with room). See corral/sim/README.md.
    kind: str = "job"
    alloc: str | None = None
    alloc_placement: str = "index"
    gang: bool = False  # all its tasks placed together or none (the spec's ``gang: true``)
    min_tasks: int | None = None  # at least this many of its tasks together (the spec's ``min_tasks``)


@dataclass
class Trace:
    name: str
    machines: list[TraceMachine]
    jobs: list[TraceJob]  # sorted by arrival, then name
    source: str = ""  # the file(s) it came from
    notes: list[str] = field(default_factory=list)  # what the loader estimated or left out, in words

    @property
    def horizon(self) -> float:
        """The last arrival or departure in the trace."""
        times = [j.arrival for j in self.jobs] + [j.departure for j in self.jobs if j.departure is not None]
        times += [j.arrival + j.duration for j in self.jobs if j.duration is not None]
        return max(times, default=0.0)

    def task_count(self) -> int:
        return sum(j.tasks for j in self.jobs)

    def check(self, across: bool = True) -> None:
        """Raise :class:`TraceError` if a machine or job breaks the format's rules (``across``: also the
        rules between jobs, an alloc set before the jobs that run in it)."""
        seen: set[str] = set()
        for i, m in enumerate(self.machines):
            if not _MACHINE_NAME.match(m.name) or m.name in seen:
                raise TraceError(self.source or self.name, 0, f"machine {i}: name {m.name!r} is not a unique lowercase name")
            seen.add(m.name)
            if m.cpu <= 0 or m.memory <= 0 or m.gpu < 0:
                raise TraceError(self.source or self.name, 0, f"machine {m.name}: expected cpu > 0, memory > 0, gpu >= 0")
        seen.clear()
        for j in self.jobs:
            where = f"job {j.name}"
            if not NAME.match(j.name) or j.name in seen:
                raise TraceError(self.source or self.name, 0, f"{where}: expected a unique name of {NAME_RULE}")
            seen.add(j.name)
            if not NAME.match(j.user):
                raise TraceError(self.source or self.name, 0, f"{where}: user {j.user!r}: expected {NAME_RULE}")
            if j.tasks < 1 or j.cpu < 0 or j.memory < 0 or j.arrival < 0:
                raise TraceError(self.source or self.name, 0, f"{where}: expected tasks >= 1, cpu, memory, arrival >= 0")
            if j.duration is not None and j.duration < 0:
                raise TraceError(self.source or self.name, 0, f"{where}: expected duration >= 0")
            if not MIN_PRIORITY <= j.priority <= MAX_PRIORITY:
                raise TraceError(self.source or self.name, 0, f"{where}: priority {j.priority} is not in 0..11")
            if j.min_tasks is not None and (j.gang or not 1 <= j.min_tasks <= j.tasks):
                raise TraceError(self.source or self.name, 0,
                                 f"{where}: min_tasks: expected 1..tasks ({j.tasks}) and no gang, got {j.min_tasks}")
            if j.appclass not in ("batch", "latency-sensitive"):
                raise TraceError(self.source or self.name, 0, f"{where}: appclass must be batch or latency-sensitive")
        self._check_allocs(across)

    def _check_allocs(self, across: bool) -> None:
        """An alloc set runs nothing (no duration, GPUs or alloc of its own); a job's alloc set is one of
        its user's that arrives before it (in trace order) and has room for one of its tasks."""
        where_from = self.source or self.name
        sets = {}
        for j in self.jobs:
            where = f"job {j.name}"
            if j.kind not in ("job", "allocset"):
                raise TraceError(where_from, 0, f"{where}: kind must be job or allocset, got {j.kind!r}")
            if j.alloc_placement not in ("index", "any"):
                raise TraceError(where_from, 0, f"{where}: alloc_placement must be index or any")
            if j.kind == "allocset":
                if j.duration is not None or j.gpu or j.alloc is not None:
                    raise TraceError(where_from, 0, f"{where}: an alloc set has no duration, gpu or alloc "
                                                    "(it runs nothing; departure ends it)")
                sets[(j.name, j.user)] = j
            elif j.alloc is not None and across:
                allocset = sets.get((j.alloc, j.user))
                if allocset is None:
                    raise TraceError(where_from, 0, f"{where}: alloc {j.alloc!r}: expected an alloc set of user "
                                                    f"{j.user} earlier in the trace")
                if j.gpu or j.cpu > allocset.cpu or j.memory > allocset.memory:
                    raise TraceError(where_from, 0, f"{where}: a task must fit one alloc of {j.alloc} "
                                                    f"(cpu {allocset.cpu}, memory {allocset.memory}, no gpu)")
                if j.alloc_placement == "index" and j.tasks > allocset.tasks:
                    raise TraceError(where_from, 0, f"{where}: {j.tasks} tasks by index in {allocset.tasks} allocs")


def _order(job: TraceJob) -> tuple[float, str]:
    return (job.arrival, job.name)


def sort_jobs(jobs: list[TraceJob]) -> list[TraceJob]:
    return sorted(jobs, key=_order)


def job_spec(job: TraceJob) -> dict[str, Any]:
    """The corral job spec (the dict ``corral submit`` takes) that runs ``job``."""
    resources: dict[str, Any] = {"cpu": f"{job.cpu}m", "memory": job.memory}
    if job.gpu:
        resources["gpu"] = job.gpu
        if job.gpu_milli != GPU_MILLI_WHOLE:
            resources["gpu_milli"] = job.gpu_milli
    if job.gpu_models:
        resources["gpu_model"] = list(job.gpu_models)
    spec: dict[str, Any] = {"name": job.name, "user": job.user, "priority": job.priority,
                            "appclass": job.appclass, "tasks": job.tasks, "resources": resources}
    if job.max_per_machine is not None:
        spec["max_per_domain"] = {HOST: job.max_per_machine}
    if job.kind == "allocset":
        spec["kind"] = "allocset"
        spec["count"] = spec.pop("tasks")
    elif job.alloc is not None:
        spec["alloc"] = job.alloc
        if job.alloc_placement != "index":
            spec["alloc_placement"] = job.alloc_placement
    if job.gang:
        spec["gang"] = True
    if job.min_tasks is not None:
        spec["min_tasks"] = job.min_tasks
    return spec


def machine_capacity(machine: TraceMachine) -> dict[str, Any]:
    """The capacity a simulated agent registers with (RegisterMachine's ``capacity``)."""
    return {"cpu": machine.cpu, "memory": machine.memory, "gpu": machine.gpu}
