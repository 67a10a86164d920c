"""Machine queues (Apollo): which pending tasks wait in which agents' queues, kept from the events.

A batch task that fits nowhere now may wait in an agent's queue; its agent
starts it the moment room frees there, with no scheduling round in between
(corral/agent/machine_queue.py). Here is the master's book of those copies:
``task_queued`` puts a pending task in a machine's queue, ``task_dequeued``
takes it out (moved, cancelled, refused), and a task that stops being pending
(it started on one of its machines or elsewhere, was killed, its job ended)
leaves every queue at once. A task may be queued on several machines at a
time (Apollo's duplicate scheduling, queue_moves.py): the first start report
wins (queue_starts.py) and every other copy is cancelled.

Derived from the log like the rest of :class:`CellState`: a rebuilt master
holds the same book (``to_dict``/``from_dict`` for checkpoints). The copies
that left a queue because their task stopped being pending are gathered in
``orphans`` while the core runs a command (it sets the list, then turns them
into cancels for their agents); at any other time (a replay) nothing is gathered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueuedCopy:
    task: str
    machine: str
    generation: int  # the generation its launch carries; the start report must name it
    since: float  # when it was queued (its event's time)
    expected_wait_s: float  # the estimate it was queued with

    @property
    def expected_start(self) -> float:
        return self.since + self.expected_wait_s

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "machine": self.machine, "generation": self.generation,
                "since": self.since, "expected_wait_s": self.expected_wait_s}


class QueueBook:
    def __init__(self) -> None:
        # machine -> task -> copy, in the order queued (the agent's queue order)
        self.by_machine: dict[str, dict[str, QueuedCopy]] = {}
        self.by_task: dict[str, dict[str, QueuedCopy]] = {}  # task -> machine -> copy
        self.orphans: list[QueuedCopy] | None = None

    def __bool__(self) -> bool:
        return bool(self.by_task)

    def copies(self, task: str) -> dict[str, QueuedCopy]:
        return self.by_task.get(task, {})

    def copy(self, task: str, machine: str) -> QueuedCopy | None:
        return self.by_task.get(task, {}).get(machine)

    def on(self, machine: str) -> list[QueuedCopy]:
        return list(self.by_machine.get(machine, {}).values())

    def length(self, machine: str) -> int:
        return len(self.by_machine.get(machine, ()))

    # ---- applied by CellState -----------------------------------------------------------------

    def add(self, copy: QueuedCopy) -> None:
        if copy.machine in self.copies(copy.task):
            raise ValueError(f"task {copy.task} is queued on {copy.machine} already")
        self.by_machine.setdefault(copy.machine, {})[copy.task] = copy
        self.by_task.setdefault(copy.task, {})[copy.machine] = copy

    def remove(self, task: str, machine: str) -> QueuedCopy | None:
        copy = self.by_task.get(task, {}).pop(machine, None)
        if copy is None:
            return None
        if not self.by_task[task]:
            del self.by_task[task]
        queue = self.by_machine[machine]
        del queue[task]
        if not queue:
            del self.by_machine[machine]
        return copy

    def task_left_pending(self, task: str) -> None:
        """Every copy of ``task`` leaves its queue (gathered for cancelling while a command runs)."""
        for machine in list(self.by_task.get(task, ())):
            copy = self.remove(task, machine)
            if self.orphans is not None and copy is not None:
                self.orphans.append(copy)

    def machine_gone(self, machine: str) -> None:
        """A lost machine's queue is gone with its agent: nothing there to cancel."""
        for task in list(self.by_machine.get(machine, ())):
            self.remove(task, machine)

    # ---- checkpoints and invariants -----------------------------------------------------------

    def to_dict(self) -> list[dict[str, Any]]:
        return [c.to_dict() for queue in self.by_machine.values() for c in queue.values()]

    def load(self, copies: list[dict[str, Any]]) -> None:
        for d in copies:
            self.add(QueuedCopy(d["task"], d["machine"], int(d["generation"]), float(d["since"]),
                                float(d["expected_wait_s"])))

    def problems(self, state: Any) -> list[str]:
        out = []
        for task, copies in self.by_task.items():
            record = state.tasks.get(task)
            if record is None or record.state.value != "pending":
                out.append(f"task {task} is queued on {sorted(copies)} but is "
                           f"{record.state.value if record else 'unknown'}")
            for machine, copy in copies.items():
                if self.by_machine.get(machine, {}).get(task) is not copy:
                    out.append(f"task {task}'s copy on {machine} is missing from that machine's queue")
        return out


def queued_reason(copies: dict[str, QueuedCopy], now: float) -> str:
    """The pending reason of a queued task: ``queued on m17, expected start in 40 s``."""
    soonest = min(copies.values(), key=lambda c: (c.expected_start, c.machine))
    where = " and ".join(sorted(copies))
    left = soonest.expected_start - now
    if left >= 0:
        return f"queued on {where}, expected start in {round(left)} s"
    return f"queued on {where}, expected to start {round(-left)} s ago (waiting for room there)"
