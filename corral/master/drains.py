"""Start-first moves: the old copy of a moved task keeps running on its source until the new one runs.

A ``start-first`` move (corral.master.rebalancer) logs the task on its target at once (one place
per task in the state, its new generation started there), and leaves the old copy *draining* on
the source: a :class:`Drain` in ``CellState.draining`` (task -> its drain), whose room stays held in
the cell view under :func:`hold_id` (nothing else is placed in it, no machine is over-committed),
and which the source's assignments still list (so its agent keeps it, and the poll's reconciliation
does not kill it). The drain ends, the old copy killed and its room released, when

* the target's agent reports the new generation ``running`` (a poll or a notification);
* the deadline passes (``RebalanceConfig.drain_timeout_s``, looked at every ``Tick``): the old copy
  is stopped anyway; the new one carries on as the task, wherever it is in its start;
* a placement preempts the held room (commit.py; like a speculative copy, it may be a victim);
* the task leaves that placement for any reason (the new copy failed, was killed, its machine
  lost, the job killed): the old copy is stopped too. The move is not undone: the log already says
  where the task is, and the task's own failover or retry takes it from there, so it is never lost;
* the old copy ends by itself: ``failed`` or ``killed`` only releases its room; ``finished`` means
  the work is done, so the task finishes (once) and the new copy is killed: never twice to completion.

Soft state, like the speculative copies' cancellations: a master rebuilt from its log has no drains,
so the old copy is not in its source's assignments any more and the next poll kills it ("not
assigned to this machine"); the new copy is the task, as the log says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.master.events import TaskEnded
from corral.model.job import TaskState
from corral.sched.cellview import PlacementError
from corral.sched.request import PlacedTask

R = TaskState.RUNNING
_SUFFIX = ".drain"


def hold_id(task: str, generation: int) -> str:
    """The view's id for the room an old copy (of ``generation``) holds while it drains."""
    return f"{task}{_SUFFIX}{generation}"


@dataclass
class Drain:
    task: str
    machine: str  # the source, where the old copy runs
    generation: int  # the old copy's
    deadline: float  # on the core's clock
    reason: str  # the move's
    gpus: tuple[int, ...] = ()  # the old copy's placement on the source, held as it was
    ports: tuple[int, ...] = ()
    reclaimed: bool = False
    request: Any = None  # the old copy's TaskRequest (its spec version's)

    @property
    def id(self) -> str:
        return hold_id(self.task, self.generation)


def hold(state: Any, drain: Drain) -> Drain:
    """Hold the old copy's room on its source (call once the task has left it in the state)."""
    _place(state, drain)
    state.draining[drain.task] = drain
    return drain


def _place(state: Any, drain: Drain) -> None:
    task, at = state.tasks[drain.task], state.view.index.get(drain.machine)
    if at is None:
        raise PlacementError(f"machine {drain.machine} is not up")
    job = state.jobs[task.job]
    state.view.place(PlacedTask(drain.id, job.id, job.user, drain.request, drain.gpus,
                                ports=drain.ports, reclaimed=drain.reclaimed), at)


def place_all(state: Any) -> None:
    """Place every drain again in a rebuilt view; one that no longer fits (or whose machine is gone)
    is dropped, to be stopped (:func:`settle`)."""
    for drain in list(state.draining.values()):
        try:
            _place(state, drain)
        except PlacementError:
            del state.draining[drain.task]
            state.drains_dropped.append(drain)


def by_hold(state: Any, view_id: str) -> Drain | None:
    """The drain whose held room is ``view_id`` in the view, if any (a preemption victim may be one)."""
    task, sep, number = view_id.rpartition(_SUFFIX)
    drain = state.draining.get(task) if sep and number.isdigit() else None
    return drain if drain is not None and drain.id == view_id else None


def preempt(step: Any, drain: Drain, reason: str) -> None:
    """A placement preempts a draining old copy: it stops now (the new copy is the task)."""
    if step.state.draining.get(drain.task) is drain:
        _end(step, drain, reason)


def pinned(state: Any) -> frozenset[str]:
    """The placed ids the rebalancer must not move: both copies of every move in progress."""
    return frozenset(d.task for d in state.draining.values()) | frozenset(d.id for d in state.draining.values())


def on(state: Any, machine: str) -> list[str]:
    """The tasks whose old copies drain on ``machine`` (its assignments list them)."""
    return [d.task for d in state.draining.values() if d.machine == machine]


def _end(step: Any, drain: Drain, why: str | None) -> None:
    """The drain is over: its room released, and (``why``) the old copy killed on its source."""
    state = step.state
    del state.draining[drain.task]
    state.view.remove(drain.id)
    state.drains_released += 1  # no event marks it: the scheduling rounds are told (MasterCore)
    if why is not None:
        step.kill(drain.task, drain.machine, why)


def new_copy_running(step: Any, task: Any, machine: str) -> None:
    """The task's agent on ``machine`` reports its generation running: its old copy may stop."""
    drain = step.state.draining.get(task.name)
    if drain is not None and drain.generation < task.generation and task.machine == machine != drain.machine:
        _end(step, drain, f"{drain.reason}: its new copy runs on {machine}")


def old_copy_report(step: Any, machine: str, status: dict[str, Any]) -> bool:
    """Handle a status of a draining old copy (True), else leave it to reports (False)."""
    state = step.state
    drain = state.draining.get(str(status.get("task_id", "")))
    if drain is None or drain.machine != machine or status.get("generation") != drain.generation:
        return False
    agent_state = status.get("state")
    if agent_state == "finished":  # the work is done: the task finishes once, its new copy is not needed
        task = state.tasks[drain.task]
        _end(step, drain, None)
        if task.state is R:
            step.kill(task.name, task.machine, f"its old copy finished on {machine} before the move ended")
            step.emit(TaskEnded, task=task.name, via="finish", machine=machine,
                      note=f"its old copy finished on {machine} while it moved: "
                           f"exit code {status.get('exit_code', 0)}")
    elif agent_state in ("failed", "killed"):
        _end(step, drain, None)  # gone by itself: its room is free, the new copy is the task
    return True  # alive: it drains (not "not assigned to this machine")


def expire(step: Any) -> None:
    """At ``Tick``: old copies whose new copies did not report running in time are stopped anyway."""
    now = step.clock.now()
    for drain in [d for d in step.state.draining.values() if now >= d.deadline]:
        task = step.state.tasks[drain.task]
        _end(step, drain, f"{drain.reason}: its new copy on {task.machine} did not report running in time")


def settle(step: Any) -> None:
    """After every command: a drain whose task left the new placement ends, its old copy killed; a
    drain dropped by a rebuilt view is killed where its machine is still up."""
    state = step.state
    for drain in list(state.draining.values()):
        task = state.tasks.get(drain.task)
        if task is None or task.state is not R or task.generation != drain.generation + 1:
            _end(step, drain, f"{drain.reason}: its new copy is no longer running "
                              f"({'gone' if task is None else task.state.value})")
    for drain in state.drains_dropped:
        record = state.machines.get(drain.machine)
        if record is not None and record.state == "up":
            step.kill(drain.task, drain.machine, f"{drain.reason}: its old copy no longer fits {drain.machine}")
    state.drains_dropped.clear()
