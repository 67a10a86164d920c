"""One command's work in progress: the events it emits and the effects it asks for.

Every room of the master takes a :class:`Step` and writes only through it:
``emit`` makes the next event (numbered after the state's last, stamped with
the command's id and the clock's time) and applies it to the state at once,
so a room reads its own changes; ``kill`` and ``start`` queue effects for the
agents, carried out only once the events are durable. The finished step is
the command's :class:`Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.master.clock import Clock
from corral.master.commands import Effect, KillTask, StartTask, UpgradeTask
from corral.master.events import Event


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)


class Step(Outcome):
    def __init__(self, state: Any, clock: Clock, cmd: str):
        super().__init__()
        self.state, self.clock, self.cmd = state, clock, cmd
        self.corrupt = False  # an event failed halfway through applying

    def emit(self, kind: type[Event], **fields: Any) -> Event:
        event = kind(self.state.seq + 1, self.cmd, self.clock.now(), **fields)
        try:
            self.state.apply(event)
        except BaseException:
            # The state may be half-changed: nothing it says can be trusted or persisted any more.
            self.corrupt = True
            raise
        self.events.append(event)
        return event

    def kill(self, task: str, machine: str | None, reason: str) -> None:
        record = self.state.machines.get(machine) if machine else None
        self.effects.append(KillTask(task, machine or "", record.address if record else "", reason))

    def start(self, task: str, machine: str, launch: dict[str, Any]) -> None:
        self.effects.append(StartTask(task, machine, self.state.machines[machine].address, launch))

    def upgrade(self, task: str, machine: str, launch: dict[str, Any]) -> None:
        self.effects.append(UpgradeTask(task, machine, self.state.machines[machine].address, launch))

    def outcome(self) -> Outcome:
        return Outcome(self.events, self.effects, self.reply)
