"""What goes into the master core (commands) and what comes out besides events (effects)."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

class CommandIds:
    """Command ids: ``<prefix>-<n>``. The default prefix is random per process (unique across master
    runs); the simulator gives one made from the run's seed, so equal seeds log equal events."""

    def __init__(self, prefix: str | None = None):
        self.prefix = prefix if prefix is not None else os.urandom(3).hex()
        self._counter = itertools.count(1)

    @classmethod
    def seeded(cls, seed: int) -> "CommandIds":
        return cls(f"s{seed}")

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"


# Unique within and across master runs: a random run prefix and a counter.
new_command_id = CommandIds()


@dataclass(frozen=True)
class Submit:
    spec: Any  # a decoded spec (dict) or a JobSpec
    request_id: str | None = None
    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class Kill:
    job: str  # job id <job>.<user>
    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class Update:
    spec: Any
    max_unavailable: int = 1  # rolling update: at most this many tasks of the job down at once
    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class Rollback:
    """Roll a job back to its spec before its last update (corral.master.rollout)."""

    job: str  # job id <job>.<user>
    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class RegisterMachine:
    name: str
    capacity: dict[str, Any]
    address: str = ""
    gpu_model: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    isolation: str = ""
    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class AgentReport:
    """What an agent says of its tasks: ``tasks`` are TaskStatus dicts. ``full``: the master's poll
    found them (``GET /v1/state``, the authority; the link hands over only the tasks that changed since
    the previous poll); else a notification the agent pushed when a task started, exited or changed
    health. Each status is judged by its generation, so a duplicate or late one changes nothing."""

    machine: str
    tasks: list[dict[str, Any]]
    incarnation: str = ""
    full: bool = True
    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class Tick:
    """Time passed: progress rolling updates, release or reject ordered jobs, declare lost machines."""

    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class MachineDown:
    """The link gave up on a machine's agent (it missed its polls): take the machine out of the cell;
    its running tasks go back to pending (``lost``), to be rescheduled at a limited rate."""

    machine: str
    note: str = ""
    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class MachineUp:
    """A down machine's agent answers again: the machine is back in the cell, and its full state
    (``tasks``, as in :class:`AgentReport`) is applied in the same step, so the tasks it still runs
    that were not rescheduled yet are taken back where they are."""

    machine: str
    tasks: list[dict[str, Any]] = field(default_factory=list)
    incarnation: str = ""
    id: str = field(default_factory=new_command_id)


@dataclass(frozen=True)
class StartTask:
    task: str
    machine: str
    address: str
    launch: dict[str, Any]  # a TaskLaunch body (docs/agent-protocol.md)


@dataclass(frozen=True)
class UpgradeTask:
    """Tell ``machine``'s agent that running ``task`` is regular now (no longer opportunistic): its
    launch again, the same generation, sent as a start is (``PUT /v1/tasks/{task}``); the agent takes
    it as an upgrade in place (corral/agent/opportunistic.py). Not a start: nothing restarts, and an
    agent (or a simulated one) that does not know the flag has nothing to change."""

    task: str
    machine: str
    address: str
    launch: dict[str, Any]


@dataclass(frozen=True)
class KillTask:
    task: str
    machine: str
    address: str
    reason: str = ""


@dataclass(frozen=True)
class ReclaimedCpu:
    """The CPU each task placed in reclaimed room on ``machine`` may use now (millicores; a task not
    listed is held only by its own limit): ``PUT /v1/reclaimed`` (docs/agent-protocol.md)."""

    machine: str
    address: str
    cpu: dict[str, int]
    task: str = ""  # not about one task (effects are logged by task)


Effect = StartTask | KillTask | ReclaimedCpu | UpgradeTask


class AgentTransport(Protocol):
    """Carries effects to agents (the link shards in the live cell, simulated agents in the simulator)."""

    def send(self, effects: list[Effect]) -> None: ...


class RecordingTransport:
    """Keeps what it was asked to send (tests; a master without a link to its agents yet)."""

    def __init__(self, keep: int = 10_000):
        self.sent: list[Effect] = []
        self.keep = keep

    def send(self, effects: list[Effect]) -> None:
        self.sent.extend(effects)
        if len(self.sent) > self.keep:
            del self.sent[: len(self.sent) - self.keep]


@dataclass(frozen=True)
class UsageReport:
    """What an agent measured its running tasks using (each poll): ``usage`` maps a task to its
    status's ``generation`` and ``usage`` (``cpu_milli``, ``memory_bytes``). Soft state: it feeds
    the reservations (corral.master.usage) and emits no event."""

    machine: str
    usage: dict[str, tuple[int, int, int]]  # task -> (generation, cpu_milli, memory_bytes)
    id: str = field(default_factory=new_command_id)
