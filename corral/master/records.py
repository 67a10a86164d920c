"""The master's records of machines, jobs and tasks, and how they turn into scheduler requests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from corral.model.allocset import is_allocset
from corral.model.job import JobState, TaskState, job_end_state
from corral.model.machine import HOST, Machine
from corral.model.priority import Band, band_of
from corral.model.ports import named
from corral.model.resources import Resources
from corral.model.spec import JobSpec, parse_job_spec
from corral.master.copies import copy_id
from corral.master.lifecycle import Transition
from corral.sched.request import TaskRequest


def job_id(name: str, user: str) -> str:
    """A job's id: ``<job>.<user>`` (job and user names hold no dots), the suffix of its task names."""
    return f"{name}.{user}"


# A job spec's fields whose default is left out of its canonical form (specs logged before them
# read back the same; an alloc set always says its kind).
_QUIET_DEFAULTS = {"kind": "job", "alloc": None, "alloc_placement": "index", "speculation": True,
                   "opportunistic": False, "expected_runtime": None}


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """The canonical form of a spec, which reads back into the same spec (cpu as millicores "500m")."""
    d = spec.model_dump(mode="json")
    d["resources"]["cpu"] = f"{spec.resources.cpu}m"
    if not is_allocset(spec):
        for key, default in _QUIET_DEFAULTS.items():
            if d.get(key, default) == default:
                d.pop(key, None)
    return d


def request_for(spec: JobSpec, jid: str) -> TaskRequest:
    """The scheduler's request for a task of ``spec`` (or an alloc of an alloc set). A task that runs
    in an alloc asks the machine for nothing: its alloc holds its resources (corral.master.allocs
    checks it against the alloc's room), so it is placed in the cell view with none."""
    domain_dependent = bool(spec.max_per_domain or spec.spread)
    return TaskRequest(
        resources=Resources() if spec.alloc else spec.resources.to_resources(),
        priority=spec.priority,
        appclass=spec.appclass,
        constraints=spec.hard_constraints(),
        preferences=spec.preferences(),
        max_per_domain=tuple(sorted(spec.max_per_domain.items())),
        spread=spec.spread,
        job=jid if domain_dependent else None,
        placement=spec.placement,
    )


def charge(spec: JobSpec, tasks: int | None = None) -> np.ndarray:
    """What ``tasks`` regular tasks of a job (default: all of them) count against its user's quota: that
    many times one task's limits (the vector of ``Resources.vector()``, built without the intermediate
    object: a hot path). The state charges each live regular task of a live job (CellState.charged)."""
    r = spec.resources
    if spec.alloc:  # its alloc set is charged for what it uses
        return np.zeros(4, dtype=np.int64)
    n = spec.tasks if tasks is None else tasks
    gpu = r.gpu * r.gpu_milli if r.gpu else 0
    return np.array((r.cpu * n, r.memory * n, r.disk * n, gpu * n), dtype=np.int64)


@dataclass
class MachineRecord:
    name: str
    capacity: Resources
    gpu_model: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    address: str = ""
    isolation: str = ""
    state: str = "up"  # up | lost
    registered_seq: int = 0
    last_seen: float = 0.0  # soft state: when the agent last answered
    incarnation: str = ""  # soft state: the agent process of its last full report ("" before one)

    def machine(self) -> Machine:
        # host=<name> makes "at most k per machine" (max_per_domain: {host: k}) one more domain limit.
        return Machine(self.name, self.capacity, self.gpu_model, {**self.attributes, HOST: self.name})

    def to_dict(self) -> dict[str, Any]:
        c = self.capacity
        return {
            "name": self.name,
            "capacity": {"cpu": c.cpu, "memory": c.memory, "disk": c.disk, "gpu": c.gpu},
            "gpu_model": self.gpu_model,
            "attributes": dict(sorted(self.attributes.items())),
            "address": self.address,
            "isolation": self.isolation,
            "state": self.state,
            "registered_seq": self.registered_seq,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MachineRecord":
        return cls(d["name"], Resources(**d["capacity"]), d.get("gpu_model", ""), dict(d.get("attributes", {})),
                   d.get("address", ""), d.get("isolation", ""), d.get("state", "up"), d.get("registered_seq", 0))


@dataclass
class JobRecord:
    id: str
    spec: JobSpec
    spec_dict: dict[str, Any]
    state: JobState = JobState.PENDING
    version: int = 1
    submitted_seq: int = 0
    submitted_at: float = 0.0
    request_id: str | None = None
    max_unavailable: int = 1
    history: list[Transition] = field(default_factory=list)
    old_specs: dict[int, dict[str, Any]] = field(default_factory=dict)  # versions some task may still run
    previous_spec: dict[str, Any] | None = None  # the spec before the last update (what a rollback returns to)
    rollback: str = ""  # why the last update was a rollback ("" if it was not)
    request: TaskRequest | None = None
    _requests: dict[int, TaskRequest] = field(default_factory=dict, repr=False)
    _opportunistic: dict[int, TaskRequest] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.request is None:
            self.request = request_for(self.spec, self.id)

    def request_of(self, version: int) -> TaskRequest:
        """The request of spec version ``version`` (the current one, or one a running task still has)."""
        if version == self.version:
            return self.request
        cached = self._requests.get(version)
        if cached is None:
            cached = self._requests[version] = request_for(parse_job_spec(self.old_specs[version]), self.id)
        return cached

    def request_of_task(self, task: "TaskRecord", version: int | None = None) -> TaskRequest:
        """The request a task of this job is placed with: its spec version's (default: the current one),
        at priority 0 and marked opportunistic while the task is opportunistic (corral.sched.preempt)."""
        version = self.version if version is None else version
        base = self.request_of(version)
        if not task.opportunistic:
            return base
        cached = self._opportunistic.get(version)
        if cached is None:  # a version's spec never changes (an update makes a new version)
            cached = self._opportunistic[version] = replace(base, priority=0, opportunistic=True)
        return cached

    def need_of(self, version: int) -> np.ndarray:
        """What one task of spec version ``version`` takes of its alloc's room: its own limits, the
        ``Resources.vector()`` its request would have outside an alloc."""
        spec = self.spec if version == self.version else parse_job_spec(self.old_specs[version])
        return spec.resources.to_resources().vector()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def user(self) -> str:
        return self.spec.user

    @property
    def band(self) -> Band:
        return band_of(self.spec.priority)

    @property
    def is_allocset(self) -> bool:
        return is_allocset(self.spec)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "spec": self.spec_dict, "state": self.state.value, "version": self.version,
            "submitted_seq": self.submitted_seq, "submitted_at": self.submitted_at,
            "request_id": self.request_id, "max_unavailable": self.max_unavailable,
            "history": [t.to_dict() for t in self.history],
            "old_specs": {str(v): s for v, s in sorted(self.old_specs.items())},
            **({"previous_spec": self.previous_spec} if self.previous_spec is not None else {}),
            **({"rollback": self.rollback} if self.rollback else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JobRecord":
        history = [Transition.from_dict(t) for t in d.get("history", [])]
        if d["state"] == "dead":  # a checkpoint from before end states: how it ended is in its story
            state = job_end_state(history[-1].via if history else "kill")
        else:
            state = JobState(d["state"])
        return cls(d["id"], parse_job_spec(d["spec"]), d["spec"], state, d["version"],
                   d["submitted_seq"], d["submitted_at"], d.get("request_id"), d.get("max_unavailable", 1),
                   history, {int(v): s for v, s in d.get("old_specs", {}).items()},
                   d.get("previous_spec"), d.get("rollback", ""))


@dataclass
class TaskRecord:
    name: str
    job: str
    index: int
    state: TaskState = TaskState.PENDING
    machine: str | None = None
    gpus: tuple[int, ...] = ()
    generation: int = 0
    version: int = 1
    history: list[Transition] = field(default_factory=list)
    request: TaskRequest | None = None  # what it runs with while running (its job's at the time)
    # soft state: why it waits (recomputed by every scheduling round, not persisted)
    reason: str = ""
    explanation: dict[str, Any] | None = None
    # soft state: its agent's last status of it (a TaskStatus dict) and, if it waits to be restarted
    # there, when (master clock); see corral.master.status
    agent: dict[str, Any] | None = None
    agent_next_try_at: float | None = None
    ports: tuple[int, ...] = ()  # the dynamic ports picked for it while it is placed
    alloc: str | None = None  # the alloc (its task name) it runs in while it is placed there
    # soft state: OOM kills its agents counted, (machine, generation) -> (count, memory limit); health.py
    oom_kills: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    reclaimed: bool = False  # placed in reclaimed room (its TaskScheduled said so) while it is placed
    copies: int = 0  # the number of its last speculative copy (0: never copied; corral.master.copies)
    # Opportunistic (beyond its user's quota; corral/master/opportunistic.py): the seq of the event that
    # made it so, oldest upgraded first; 0 for a regular task.
    opportunistic: int = 0
    started_generation: int = 0  # the generation whose start-up cost a task_started recorded (reports.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "job": self.job, "index": self.index, "state": self.state.value,
            "machine": self.machine, "gpus": list(self.gpus), "generation": self.generation,
            "version": self.version, "history": [t.to_dict() for t in self.history],
            **({"ports": list(self.ports)} if self.ports else {}),
            **({"alloc": self.alloc} if self.alloc else {}),
            **({"reclaimed": True} if self.reclaimed else {}),
            **({"copies": self.copies} if self.copies else {}),
            **({"opportunistic": self.opportunistic} if self.opportunistic else {}),
            **({"started_generation": self.started_generation} if self.started_generation else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskRecord":
        return cls(d["name"], d["job"], d["index"], TaskState(d["state"]), d.get("machine"),
                   tuple(d.get("gpus", ())), d.get("generation", 0), d.get("version", 1),
                   [Transition.from_dict(t) for t in d.get("history", [])], ports=tuple(d.get("ports", ())),
                   alloc=d.get("alloc"), reclaimed=bool(d.get("reclaimed", False)), copies=d.get("copies", 0),
                   opportunistic=int(d.get("opportunistic", 0)),
                   started_generation=int(d.get("started_generation", 0)))


def launch_body(job: JobRecord, task: TaskRecord, alloc: dict[str, Any] | None = None, copy: int = 0) -> dict[str, Any]:
    """The TaskLaunch body (docs/agent-protocol.md) for running ``task`` of ``job``; ``alloc``: the
    ``AllocRef`` of the alloc it runs in (corral.master.allocs.alloc_ref), its parent cgroup there;
    ``copy``: which copy of it (a speculative copy's id is its own, corral.master.copies)."""
    spec = job.spec
    r: Resources = spec.resources.to_resources()
    return {
        "task_id": copy_id(task.name, copy), "generation": task.generation, "name": task.name, "user": job.user,
        **({"copy": copy} if copy else {}),
        "command": spec.command or "",
        "args": list(spec.args), "env": dict(spec.env), "workdir": spec.workdir,
        "resources": {"cpu": r.cpu, "memory": r.memory, "disk": r.disk, "gpu": r.gpu, "gpu_milli": r.gpu_milli},
        "gpus": list(task.gpus),  # the scheduler's choice of the machine's GPUs
        "priority": spec.priority, "appclass": spec.appclass.value, "ports": list(r.ports + task.ports),
        **({"named_ports": named(spec.resources.named_ports, task.ports)} if spec.resources.named_ports else {}),
        **({"restart": spec.restart.model_dump()} if spec.restart is not None else {}),
        **({"alloc": alloc} if alloc is not None else {}),
        # beyond its user's quota (corral/master/opportunistic.py): the agent evicts it first and gives it the
        # lowest CPU weight; an upgraded task's launch, sent again, lacks it (corral/agent/opportunistic.py)
        **({"opportunistic": True} if task.opportunistic else {}),
        **({"health_check": spec.health_check.model_dump(mode="json")} if spec.health_check is not None else {}),
    }
