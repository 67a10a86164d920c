"""The master's events: durable facts, one dataclass per type, with one (de)serialisation.

Every accepted command yields events; :meth:`CellState.apply` is the only
thing that reads them, the store keeps their dicts (:meth:`Event.to_dict`),
and a restarted master (or the simulator loading a checkpoint) decodes them
with :func:`decode`. Each dict carries the format version ``v``; a log
written by an earlier version (no ``v``: version 1, the same fields) decodes
the same way, and a version from the future is refused rather than
misread.

=====================  =====================================================
type                   fact
=====================  =====================================================
machine_registered     a machine joined the cell, or came back, or changed
machine_lost           a machine left the cell; its running tasks are lost
job_submitted          a job was admitted; its tasks are pending
job_updated            a job's spec changed (in place, or by rolling restart)
job_killed             a job was killed (by its user)
job_failed             a task of the job failed for good; the rest are killed
task_scheduled         a plan placing the task was committed
task_ended             a running or pending task left that state (``via``)
task_upgraded          an opportunistic task became regular in place (its user's quota freed)
allocset_submitted     an alloc set was admitted; its allocs are pending
allocset_killed        an alloc set was killed; its allocs are released
copy_scheduled         a running task got a speculative second copy (``note``: why)
copy_ended             a task's speculative copy stopped (``via``: won | lost | cancel | fail)
task_queued            a pending task waits in a machine's queue (machine_queues.py)
task_dequeued          a pending task left a machine's queue (moved, cancelled, refused)
task_started           a placed task's agent measured what its start cost there (``startup_s``)
=====================  =====================================================

An alloc is placed, lost, preempted and released by the same ``task_scheduled``
and ``task_ended`` events as a task (an alloc is its set's "task" in the
state); a task placed inside an alloc has ``task_scheduled.alloc``.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

FORMAT_VERSION = 2  # 1: the same fields, no "v" key (before events were typed)


class EventFormatError(ValueError):
    """An event dict this version cannot read (unknown type, missing field, future version)."""


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    cmd: str
    t: float
    TYPE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": FORMAT_VERSION, "seq": self.seq, "type": self.TYPE, "cmd": self.cmd, "t": self.t}
        for name in _durable(type(self)):
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        try:
            values = {f.name: d[f.name] if f.default is MISSING else d.get(f.name, f.default)
                      for f in fields(cls)[3:] if f.metadata.get("durable", True)}
            for key in ("gpus", "ports"):
                if key in values:
                    values[key] = tuple(values[key])
            return cls(d["seq"], d.get("cmd", ""), d.get("t", 0.0), **values)
        except KeyError as e:
            raise EventFormatError(f"event {d.get('seq')} ({cls.TYPE}) lacks field {e.args[0]!r}") from None


_DURABLE: dict[type, tuple[str, ...]] = {}


def _durable(cls: type) -> tuple[str, ...]:
    """The names of the fields of ``cls`` the log keeps, after seq, cmd and t (computed once per type:
    every event of a submission is turned into its dict on the hot path)."""
    names = _DURABLE.get(cls)
    if names is None:
        names = _DURABLE[cls] = tuple(f.name for f in fields(cls)[3:] if f.metadata.get("durable", True))
    return names


def _transient(default: Any = None) -> Any:
    """A field the emitter hands to apply but the log does not keep (it is derived from durable ones)."""
    return field(default=default, compare=False, repr=False, metadata={"durable": False})


@dataclass(frozen=True, slots=True)
class MachineRegistered(Event):
    machine: dict[str, Any]  # name, capacity (corral units), gpu_model, attributes, address, isolation
    TYPE: ClassVar[str] = "machine_registered"


@dataclass(frozen=True, slots=True)
class MachineLost(Event):
    machine: str
    TYPE: ClassVar[str] = "machine_lost"


@dataclass(frozen=True, slots=True)
class JobSubmitted(Event):
    job: str
    spec: dict[str, Any]
    request_id: str | None = None
    opportunistic: int = 0  # how many of its tasks, the last ones, run beyond its user's quota
    parsed: Any = _transient()  # the JobSpec the core validated: apply need not parse it again
    TYPE: ClassVar[str] = "job_submitted"


@dataclass(frozen=True, slots=True)
class JobUpdated(Event):
    job: str
    spec: dict[str, Any]
    restart: bool
    max_unavailable: int = 1
    parsed: Any = _transient()
    rollback: str = ""  # why, when the update rolls back to the spec before (corral.master.rollout)
    opportunistic: int = 0  # how many of the tasks it adds (scaling up), the last ones, are opportunistic
    TYPE: ClassVar[str] = "job_updated"


@dataclass(frozen=True, slots=True)
class JobKilled(Event):
    job: str
    note: str = ""
    TYPE: ClassVar[str] = "job_killed"


@dataclass(frozen=True, slots=True)
class JobFailed(Event):
    job: str
    note: str = ""
    TYPE: ClassVar[str] = "job_failed"


@dataclass(frozen=True, slots=True)
class TaskScheduled(Event):
    task: str
    machine: str
    generation: int
    gpus: tuple[int, ...] = ()
    ports: tuple[int, ...] = ()  # the dynamic ports picked for it
    alloc: str | None = None  # the alloc it was placed in (on that alloc's machine), if any
    reclaimed: bool = False  # non-production work placed in room only reservations leave (Borg §5.5)
    TYPE: ClassVar[str] = "task_scheduled"


@dataclass(frozen=True, slots=True)
class TaskEnded(Event):
    task: str
    via: str  # finish | fail | failover | evict | restart | reject (see lifecycle.TASK_TRANSITIONS)
    note: str = ""
    machine: str | None = None  # where it ran (failover, evict, finish, fail), so no note is parsed for it
    TYPE: ClassVar[str] = "task_ended"


@dataclass(frozen=True, slots=True)
class TaskUpgraded(Event):
    task: str  # an opportunistic task, now regular where it is: no restart (corral.master.opportunistic)
    note: str = ""
    TYPE: ClassVar[str] = "task_upgraded"


@dataclass(frozen=True, slots=True)
class AllocSetSubmitted(Event):
    job: str  # the alloc set's id, <name>.<user>, in the jobs' name space
    spec: dict[str, Any]  # kind: allocset (corral.model.allocset)
    request_id: str | None = None
    parsed: Any = _transient()
    TYPE: ClassVar[str] = "allocset_submitted"


@dataclass(frozen=True, slots=True)
class AllocSetKilled(Event):
    job: str
    note: str = ""
    TYPE: ClassVar[str] = "allocset_killed"


@dataclass(frozen=True, slots=True)
class CopyScheduled(Event):
    task: str  # the task copied (it keeps running where it is)
    copy: int  # the copy's number (the first copy is 0; corral.master.copies)
    machine: str  # where the copy runs: never the task's machine or failure domain
    generation: int
    note: str = ""  # why: "speculative copy of 3.sort.alice: running 52 s, siblings' p90 5.1 s × 1.5"
    TYPE: ClassVar[str] = "copy_scheduled"


@dataclass(frozen=True, slots=True)
class CopyEnded(Event):
    task: str
    copy: int
    via: str  # won (it finished first; the task finishes) | lost (the other finished first) | cancel | fail
    note: str = ""
    machine: str | None = None
    TYPE: ClassVar[str] = "copy_ended"


@dataclass(frozen=True, slots=True)
class TaskQueued(Event):
    task: str
    machine: str
    generation: int  # the generation its launch carries (the task's next)
    expected_wait_s: float = 0.0  # the estimate it was queued with
    TYPE: ClassVar[str] = "task_queued"


@dataclass(frozen=True, slots=True)
class TaskDequeued(Event):
    task: str
    machine: str
    why: str = ""
    TYPE: ClassVar[str] = "task_dequeued"


@dataclass(frozen=True, slots=True)
class TaskStarted(Event):
    task: str
    machine: str
    generation: int
    startup_s: float  # the agent's TaskStatus.startup_s: the spawn asked for to exec done (corral/agent/startup_cost.py)
    TYPE: ClassVar[str] = "task_started"


EVENT_TYPES: dict[str, type[Event]] = {cls.TYPE: cls for cls in (
    MachineRegistered, MachineLost, JobSubmitted, JobUpdated, JobKilled, JobFailed, TaskScheduled, TaskEnded,
    TaskUpgraded, AllocSetSubmitted, AllocSetKilled, CopyScheduled, CopyEnded, TaskQueued, TaskDequeued,
    TaskStarted)}


def decode(d: dict[str, Any]) -> Event:
    """The typed event of a logged dict (any format version up to :data:`FORMAT_VERSION`)."""
    version = d.get("v", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise EventFormatError(f"event {d.get('seq')} has format version {version!r}; this corral reads "
                               f"versions 1 to {FORMAT_VERSION}: upgrade it")
    cls = EVENT_TYPES.get(d.get("type"))
    if cls is None:
        raise EventFormatError(f"event {d.get('seq')} has unknown type {d.get('type')!r}; expected one of "
                               f"{', '.join(sorted(EVENT_TYPES))}")
    return cls.from_dict(d)
