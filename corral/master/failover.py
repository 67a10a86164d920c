"""Failover and re-adoption: tasks whose machine or agent gave up on them, and tasks found again.

* A task its agent gave up on (``failed``) is tried on other machines first,
  up to ``failover_machines`` of them (or every machine up); then it fails,
  and its job fails with it (the task's last error in the reason).
* A failed task that no machine of the cell it has not failed on could ever
  run (corral.master.stranded) fails at once, and its job with it, saying so;
  a failed-over task still pending is looked at again at every ``Tick`` (a
  machine it could run on may have left or shrunk), so it never waits for ever.
* A machine that stops answering (``MachineDown``, or no answer for
  ``lost_after_s`` when the core keeps time itself) leaves the cell; its
  running tasks go back to pending (``lost``) and wait their turn in a
  :class:`RescheduleLimiter`, so a partition does not move a whole rack's work
  at once (Borg §3.3).
* A lost task reported running again by its machine, with the same
  generation, before it was placed elsewhere, is taken back where it runs
  (re-adoption: no restart).

Machines a task ran on are read from its transitions' ``machine`` field,
never from their notes.
"""

from __future__ import annotations

from typing import Any

from corral.master.clock import Clock
from corral.master.commands import MachineDown
from corral.master.errors import AdmissionError
from corral.master.events import JobFailed, MachineLost, MachineRegistered, TaskEnded, TaskScheduled
from corral.master.liveness import RescheduleLimiter
from corral.master.step import Step
from corral.master.stranded import nowhere_left
from corral.model.job import TaskState

ACTIVE = ("starting", "running", "backoff")  # agent task states of a task that still lives there


def last_machine(history: list) -> str:
    """The machine of a task's last ``schedule`` transition ("" if it never ran)."""
    for t in reversed(history):
        if t.via == "schedule":
            return t.machine or ""
    return ""


def failed_machines(history: list) -> list[str]:
    """The machines a task failed on (transition ``failover``) since it last (re)started from a spec:
    its last ``submit``, ``restart`` or ``update``."""
    machines: list[str] = []
    current = ""
    for t in history:
        if t.via in ("submit", "restart", "update"):
            machines, current = [], ""
        elif t.via == "schedule":
            current = t.machine or ""
        elif t.via == "failover":
            where = t.machine or current
            if where and where not in machines:
                machines.append(where)
    return machines


class Failover:
    def __init__(self, clock: Clock, failover_machines: int = 3, lost_after_s: float | None = None):
        self.clock = clock
        self.failover_machines = failover_machines
        self.lost_after_s = lost_after_s  # None: no link to the agents, machines are never declared lost
        # Lost tasks wait here for their turn to be rescheduled (soft state).
        self.reschedule = RescheduleLimiter(clock)
        # Failed-over tasks, looked at by fail_stranded (soft state; rebuilt by watch_failed_over).
        self.failed_over: set[str] = set()

    def watch_failed_over(self, state: Any) -> None:
        """Find the pending tasks that failed over (after a restart the set is empty)."""
        self.failed_over = {n for n in state.pending if state.tasks[n].history
                            and state.tasks[n].history[-1].via == "failover"}

    def fail_stranded(self, step: Step) -> None:
        """Fail the failed-over tasks (and their jobs) that no machine they have not failed on could
        ever run, now that machines may have left or changed (corral.master.stranded)."""
        state = step.state
        for name in sorted(self.failed_over):
            task = state.tasks.get(name)
            if task is None or task.state is not TaskState.PENDING or task.history[-1].via != "failover":
                self.failed_over.discard(name)
                continue
            job = state.jobs[task.job]
            tried = failed_machines(task.history)
            stuck = nowhere_left(state, job.request, tried)
            if stuck is not None:
                self.failed_over.discard(name)
                self._fail_job(step, job, task, f"failed on {', '.join(tried)}; {stuck}")

    def failed(self, step: Step, task: Any, machine: str, error: str) -> None:
        """The agent on ``machine`` gave up on ``task``: another machine, or the task and its job fail."""
        state = step.state
        tried = failed_machines(task.history)
        tried = tried + [machine] if machine not in tried else tried
        up = {m.name for m in state.up_machines()}
        job = state.jobs[task.job]
        stuck = nowhere_left(state, job.request, tried)  # corral.master.stranded
        if stuck is None and len(tried) < self.failover_machines and not up <= set(tried):
            step.emit(TaskEnded, task=task.name, via="failover", machine=machine,
                      note=f"failed on {machine}: {error}; it will be tried on another machine")
            self.failed_over.add(task.name)
            return
        where = f"on {len(tried)} machines ({', '.join(tried)})" if len(tried) > 1 else f"on {machine}"
        note = f"failed {where}; " + (f"{stuck}; " if stuck and len(state.machines) > len(tried) else "") + f"last error: {error}"
        step.emit(TaskEnded, task=task.name, via="fail", note=note, machine=machine)
        self._fail_job(step, job, task, note)

    def _fail_job(self, step: Step, job: Any, task: Any, note: str) -> None:
        state = step.state
        if not job.state.ended:
            # The same task keeps failing wherever it goes: the job has failed; stop the rest of it.
            for other in state.tasks_of(job.id):
                if other.state is TaskState.RUNNING:
                    step.kill(other.name, other.machine, f"the job failed: task {task.index} {note}")
            step.emit(JobFailed, job=job.id, note=f"task {task.index} {note}")

    def readopt(self, step: Step, task: Any, machine: str, status: dict[str, Any], fits) -> bool:
        """Take back a lost task its machine reports running again (same generation, not placed
        elsewhere yet, its spec unchanged, still fitting). True if it was."""
        state = step.state
        record = state.machines.get(machine)
        job = state.jobs[task.job]
        if (record is None or record.state != "up" or not task.history or task.history[-1].via != "lost"
                or last_machine(task.history) != machine or status.get("generation") != task.generation
                or status.get("state") not in ACTIVE or task.version != job.version
                or job.request.gpu or job.request.resources.dynamic_ports or job.spec.alloc
                or not fits(task, machine)):  # a task of an alloc goes back into its alloc, placed again
            return False
        self.reschedule.discard(task.name)
        step.emit(TaskScheduled, task=task.name, machine=machine, gpus=(), generation=task.generation)
        return True

    def lose_machine(self, step: Step, machine: Any, reason: str) -> None:
        lost = []
        for task in step.state.tasks.values():
            if task.state is TaskState.RUNNING and task.machine == machine.name:
                task.reason = reason
                lost.append(task.name)
        step.emit(MachineLost, machine=machine.name)
        self.reschedule.add(lost, machine.name)

    def machine_down(self, step: Step, cmd: MachineDown) -> None:
        machine = step.state.machines.get(cmd.machine)
        if machine is None:
            raise AdmissionError(404, [("machine", f"no machine {cmd.machine}")], "not_found")
        if machine.state == "up":
            self.lose_machine(step, machine, cmd.note or f"its machine {machine.name} stopped answering")
        step.reply = {"machine": machine.name, "state": machine.state}

    def machine_back(self, step: Step, name: str) -> None:
        """A down machine's agent answers again: the machine rejoins the cell as it was."""
        machine = step.state.machines.get(name)
        if machine is None:
            raise AdmissionError(404, [("machine", f"no machine {name}; register it first")], "not_found")
        if machine.state != "up":
            record = {k: v for k, v in machine.to_dict().items() if k not in ("state", "registered_seq")}
            step.emit(MachineRegistered, machine=record)

    def lose_silent(self, step: Step) -> None:
        """Declare lost the machines not heard from for ``lost_after_s`` (when the core keeps time)."""
        if self.lost_after_s is None:
            return
        now = self.clock.now()
        for machine in list(step.state.machines.values()):
            if machine.state == "up" and machine.address and now - machine.last_seen > self.lost_after_s:
                self.lose_machine(step, machine, f"its machine {machine.name} stopped answering")
