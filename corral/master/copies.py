"""Speculative copies of running tasks (a part of :class:`corral.master.state.CellState`).

A task runs as copy 0 (its record's machine). A straggler may get one more copy on another
machine (``copy_scheduled``); on its agent that copy is a task of its own id,
``<task name>.copy<N>`` (five dot-separated parts, so it never equals a task's name), with
``copy: N`` in its launch and ``CORRAL_TASK_COPY=N`` in its environment. The copy holds its
resources in the cell view under that id. Whichever copy finishes first finishes the task, once;
the other is killed (corral.master.speculation). A copy whose task leaves running for any other
reason (killed, failed over, evicted, lost) is dropped in the same apply, so no copy outlives its
task: ``cancelled`` lists the dropped ones for the core to kill on their agents (soft state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.master import events as ev
from corral.sched.cellview import PlacementError
from corral.sched.request import PlacedTask

_SUFFIX = ".copy"


def copy_id(task: str, copy: int) -> str:
    """The agent-side id of copy ``copy`` of ``task`` (copy 0 is the task itself)."""
    return task if copy == 0 else f"{task}{_SUFFIX}{copy}"


def parse_copy_id(name: str) -> tuple[str, int] | None:
    """(task, copy) of a copy's id, or None for anything else (a task's own name)."""
    task, sep, number = name.rpartition(_SUFFIX)
    if not sep or not number.isdigit() or task.count(".") != 3:
        return None
    return task, int(number)


def task_of(name: str) -> str:
    """The task an agent-side id belongs to (the id itself unless it is a copy's)."""
    parsed = parse_copy_id(name)
    return name if parsed is None else parsed[0]


@dataclass
class CopyRecord:
    task: str
    copy: int
    machine: str
    generation: int
    started_at: float
    note: str = ""

    @property
    def id(self) -> str:
        return copy_id(self.task, self.copy)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "copy": self.copy, "machine": self.machine, "generation": self.generation,
                "started_at": self.started_at, "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CopyRecord":
        return cls(d["task"], d["copy"], d["machine"], d["generation"], d["started_at"], d.get("note", ""))


class CopyAccounts:
    """Mixed into CellState: ``copies`` (task -> its running speculative copy) and their appliers."""

    copies: dict[str, CopyRecord]
    cancelled: list[CopyRecord]
    tasks: dict[str, Any]
    jobs: dict[str, Any]

    def copy_by_id(self, name: str) -> CopyRecord | None:
        """The running copy whose agent-side id is ``name``, if any."""
        parsed = parse_copy_id(name)
        record = self.copies.get(parsed[0]) if parsed is not None else None
        return record if record is not None and record.copy == parsed[1] else None

    def copies_of(self, job: str) -> int:
        return sum(1 for c in self.copies.values() if self.tasks[c.task].job == job)

    def _placed_copy(self, record: CopyRecord) -> PlacedTask:
        task = self.tasks[record.task]
        job = self.jobs[task.job]
        return PlacedTask(record.id, job.id, job.user, task.request)

    def _copy_scheduled(self, event: ev.CopyScheduled) -> None:
        task = self.tasks[event.task]
        if task.state.value != "running" or event.task in self.copies:
            raise PlacementError(f"task {event.task} is {task.state.value}"
                                 f"{' with a copy already' if event.task in self.copies else ''}: no copy of it")
        if event.machine == task.machine:
            raise PlacementError(f"a copy of {event.task} may not run on its own machine {event.machine}")
        record = CopyRecord(event.task, event.copy, event.machine, event.generation, event.t, event.note)
        self.view.place(self._placed_copy(record), self.view.index[event.machine])
        self.copies[event.task] = record
        task.copies = max(task.copies, event.copy)

    def _copy_ended(self, event: ev.CopyEnded) -> None:
        record = self.copies.pop(event.task)
        if record.copy != event.copy:
            raise PlacementError(f"task {event.task} runs copy {record.copy}, not {event.copy}")
        self.view.remove(record.id)

    def _drop_copy(self, task: str, lost: bool = False) -> None:
        """Its task left running: the copy goes too (killed on its agent unless its machine is lost)."""
        record = self.copies.pop(task, None)
        if record is not None:
            if not lost:
                self.view.remove(record.id)
                self.cancelled.append(record)

    def _lose_copies_on(self, machine: str) -> None:
        """``machine`` left the cell: the copies on it are gone with it (the view is rebuilt next)."""
        for record in [c for c in self.copies.values() if c.machine == machine]:
            self._drop_copy(record.task, lost=True)

    def _place_copies(self, may_drop: bool) -> None:
        """Place every copy again in a rebuilt view; one that no longer fits is dropped (``may_drop``:
        an event rebuilt it; a checkpoint's copies must fit)."""
        for record in list(self.copies.values()):
            at = self.view.index.get(record.machine)
            try:
                if at is None:
                    raise PlacementError(f"machine {record.machine} is not up")
                self.view.place(self._placed_copy(record), at)
            except PlacementError as e:
                if not may_drop:
                    raise PlacementError(f"copy {record.id} does not fit its machine: {e}") from None
                del self.copies[record.task]
                self.cancelled.append(record)
