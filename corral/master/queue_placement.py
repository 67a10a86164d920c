"""Machine queues, the master's side (Apollo): who waits where, moves, starts and cancels. Sans-IO.

* **Queue** (after a round's commit): a pending batch task the round could
  not place goes to the machine where its expected start is soonest
  (:class:`ExpectedWait`, queue_wait.py), among the up machines that could
  ever run it and whose queue is shorter than ``max_length``:
  ``task_queued`` plus a launch marked ``queued`` to that agent, which starts
  it the moment room frees there. Production, monitoring and
  latency-sensitive work never waits in a machine queue, nor do gangs, alloc
  members and tasks asking for GPUs or ports (the master picks those when it
  places a task).
* **Move** (at every ``Tick``; Apollo's duplicate scheduling): a queued copy
  whose expected start slipped by more than ``move_factor`` × the wait it was
  queued with (at least ``move_min_s``), or whose wait is above
  ``average_factor`` × the cell's average queued wait, gets a second copy
  on a machine where it would start at least ``move_min_s`` sooner. Both wait.
* **Start** (an agent's report, :func:`on_report`): the first copy reported
  started wins (``task_scheduled`` there); every other copy is cancelled (a
  ``KillTask`` to its agent, which drops it from its queue or kills it if it
  started meanwhile). A copy reported started after its task runs elsewhere
  is killed and its end never counts: the task runs to completion at most
  once as far as the master is concerned (see docs/agent-protocol.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from corral.master.events import TaskDequeued, TaskQueued, TaskScheduled
from corral.master.failover import failed_machines
from corral.master.machine_queues import QueuedCopy
from corral.master.records import launch_body
from corral.master.step import Step
from corral.master.stranded import why_not
from corral.model.job import AppClass, TaskState
from corral.model.priority import Band


@dataclass(frozen=True)
class MachineQueueConfig:
    """The cell configuration's machine queues (``machine-queues``, ``machine-queue-length``)."""

    enabled: bool = False  # off: no task ever waits in an agent's queue (today's behaviour)
    max_length: int = 4  # tasks waiting in one machine's queue at most
    max_copies: int = 2  # machines one task waits on at once (its first queue and one move)
    move_factor: float = 2.0
    average_factor: float = 3.0
    move_min_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"machine-queue-length: expected at least 1, got {self.max_length}")


def eligible(job: Any) -> bool:
    """May tasks of ``job`` wait in a machine queue? Batch and best-effort batch work only."""
    spec = job.spec
    request = job.request
    return (job.band in (Band.BATCH, Band.BEST_EFFORT) and spec.appclass is AppClass.BATCH
            and not job.is_allocset and not spec.alloc and not spec.gang and spec.min_tasks is None
            and not request.resources.gpu and not request.resources.ports and not spec.resources.named_ports)


def queued_launch(state: Any, task: Any, generation: int) -> dict[str, Any]:
    """The launch of a queued copy: the task's launch at its next generation, marked ``queued``."""
    return {**launch_body(state.jobs[task.job], task), "generation": generation, "queued": True}


class MachineQueues:
    def __init__(self, config: MachineQueueConfig, expected_wait: Any):
        self.config = config
        self.expected_wait = expected_wait  # ExpectedWait: (machine, request) -> seconds

    def candidates(self, state: Any, task: Any, exclude: Iterable[str] = ()) -> list[tuple[float, str]]:
        """(expected wait, machine) of every machine ``task`` may queue on, soonest first."""
        job = state.jobs[task.job]
        skip = set(exclude) | set(state.machine_queues.copies(task.name))
        if task.history and task.history[-1].via == "failover":
            skip |= set(failed_machines(task.history))
        out = []
        for machine in state.up_machines():
            if machine.name in skip or state.machine_queues.length(machine.name) >= self.config.max_length:
                continue
            if why_not(machine, job.request) is not None:
                continue
            wait = float(self.expected_wait(machine.name, job.request))
            if math.isfinite(wait):
                out.append((max(wait, 0.0), machine.name))
        return sorted(out)

    def place(self, step: Step, unplaced: Iterable[str]) -> int:
        """Queue each unplaced eligible task not queued yet on its soonest machine; how many were."""
        if not self.config.enabled:
            return 0
        state = step.state
        queued = 0
        for name in unplaced:
            task = state.tasks.get(name)
            if task is None or task.state is not TaskState.PENDING or state.machine_queues.copies(name):
                continue
            job = state.jobs[task.job]
            if not eligible(job) or job.id in state.waiting:
                continue
            found = self.candidates(state, task)
            if found:
                wait, machine = found[0]
                self._queue(step, task, machine, wait)
                queued += 1
        return queued

    def _queue(self, step: Step, task: Any, machine: str, wait: float) -> None:
        copies = step.state.machine_queues.copies(task.name)
        generation = next(iter(copies.values())).generation if copies else task.generation + 1
        step.emit(TaskQueued, task=task.name, machine=machine, generation=generation, expected_wait_s=round(wait, 3))
        step.start(task.name, machine, queued_launch(step.state, task, generation))

    def correct(self, step: Step) -> int:
        """Apollo's deferred correction: a second copy for each queued task whose wait grew; how many."""
        if not self.config.enabled or not step.state.machine_queues:
            return 0
        state, now, config = step.state, step.clock.now(), self.config
        waits: dict[tuple[str, str], float] = {}
        for task, copies in state.machine_queues.by_task.items():
            request = state.jobs[state.tasks[task].job].request
            for machine in copies:
                waits[task, machine] = self._wait_where(machine, request, task)
        finite = [w for w in waits.values() if math.isfinite(w)]
        average = sum(finite) / len(finite) if finite else 0.0
        moved = 0
        for task_name in sorted(state.machine_queues.by_task):
            copies = state.machine_queues.copies(task_name)
            if len(copies) >= config.max_copies:
                continue
            best = min(waits[task_name, m] for m in copies)
            if not any(self._slipped(c, waits[task_name, m], now, average) for m, c in copies.items()):
                continue
            task = state.tasks[task_name]
            found = self.candidates(state, task)
            if found and found[0][0] + config.move_min_s <= best:
                self._queue(step, task, found[0][1], found[0][0])
                moved += 1
        return moved

    def _wait_where(self, machine: str, request: Any, task: str) -> float:
        """A queued copy's wait where it stands (behind the tasks queued before it), if the estimate
        can say; else the machine's whole queue."""
        try:
            return float(self.expected_wait(machine, request, until=task))
        except TypeError:  # an ExpectedWait without ``until``
            return float(self.expected_wait(machine, request))

    def _slipped(self, copy: QueuedCopy, wait: float, now: float, average: float) -> bool:
        config = self.config
        if math.isinf(wait):
            return True
        slip = now + wait - copy.expected_start
        if slip > max(config.move_factor * copy.expected_wait_s, config.move_min_s):
            return True
        return wait > config.move_min_s and wait > config.average_factor * average

    def dequeue_job(self, step: Step, tasks: Iterable[str], why: str) -> None:
        """Take ``tasks`` out of every queue (their job's spec changed: the queued launches are old)."""
        for name in tasks:
            for machine in list(step.state.machine_queues.copies(name)):
                step.emit(TaskDequeued, task=name, machine=machine, why=why)
                step.kill(name, machine, why)

    def cancel_orphans(self, step: Step, orphans: list[QueuedCopy]) -> None:
        """Cancel on their agents the copies whose task stopped waiting (except where it now runs)."""
        for copy in orphans:
            task = step.state.tasks.get(copy.task)
            if task is not None and task.state is TaskState.RUNNING and task.machine == copy.machine:
                continue
            if task is not None and task.state is TaskState.RUNNING:
                why = f"started on {task.machine} first"
            else:
                why = "no longer waiting to run"
            step.kill(copy.task, copy.machine, why)


LIVE = ("starting", "running", "backoff")
STARTED = LIVE + ("finished", "failed")


def on_report(step: Step, task: Any, machine: str, status: dict[str, Any], fits: Any) -> bool:
    """An agent's status of pending ``task`` queued on ``machine``. True: dealt with here; False: the
    report's usual rules apply (it started from the queue and now runs here, or the status is not
    about this copy)."""
    state = step.state
    copy = state.machine_queues.copy(task.name, machine)
    if copy is None or status.get("generation") != copy.generation:
        return False
    agent_state = status.get("state")
    if agent_state == "queued":
        return True
    if agent_state in STARTED:
        if not fits(task, machine):
            # The master placed other work in that room before the start reached it: this copy yields.
            why = f"{machine} had no room left for it when it started from the queue"
            step.emit(TaskDequeued, task=task.name, machine=machine, why=why)
            step.kill(task.name, machine, why)
            return True
        step.emit(TaskScheduled, task=task.name, machine=machine, generation=copy.generation)
        return False  # now running here: a finished or failed status is judged as for any task
    # killed (or a state this master does not know) before it started: it no longer waits there
    step.emit(TaskDequeued, task=task.name, machine=machine,
              why=status.get("last_error") or f"its agent reports it {agent_state}")
    return True
