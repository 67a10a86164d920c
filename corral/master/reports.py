"""What agents say about their tasks, turned into task ends, kills and re-adoptions.

A report is either full (the poll's ``GET /v1/state``: every task the agent
has) or partial (a notification of the tasks that changed); both are judged
status by status, so the same rules make a duplicate, late or reordered
status harmless:

* a status for the generation the master has running on that machine counts:
  ``finished`` → the task ends (``finish``), ``failed`` → failover
  (corral.master.failover), ``killed`` → back to pending (``evict``), and any
  other state refreshes what the task shows (restarts, back-off, last exit);
* a status of another generation, or of a task the master has elsewhere or
  not at all, changes nothing; if that copy still lives it is killed, since
  the master does not want it there;
* a lost task reported alive where it ran is re-adopted (no restart);
* a status of the running generation that carries the agent's ``startup_s`` (what the start cost
  there, first attempt) yields one ``task_started`` per placement: the start-up estimates' sample;
* a full report that shows a task ``opportunistic`` the master has upgraded sends its launch again
  (the agent upgrades it in place: corral.master.opportunistic);
* a pending task queued on that machine (machine queues, queue_placement.py)
  reported started there now runs there (the first copy to start wins), one
  reported ``queued`` stays queued, one reported killed leaves that queue.

A partial report is news, not the truth about the machine: it changes nothing
for a machine that is not up (its return, ``MachineUp``, carries a full
report) or from an agent process other than the one the last full report
came from (a late word of the agent before its restart), kills nothing (strays are for the poll's full report and the
assignments to settle: a late notification must not kill the copy a restarted
agent runs), and does not count as hearing from the machine (only a poll
proves the master reaches it).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from corral.master.commands import AgentReport
from corral.master.errors import AdmissionError
from corral.master.events import TaskEnded, TaskStarted
from corral.master import allocs, drains, health, queue_placement, rollout, speculation
from corral.master.failover import ACTIVE, Failover
from corral.master.jobs import reject_dependents
from corral.master.step import Step
from corral.model.job import TaskState

ENDED = ("finished", "failed", "killed")


def apply_report(step: Step, cmd: AgentReport, failover: Failover, fits: Callable[[Any, str], bool]) -> None:
    state = step.state
    machine = state.machines.get(cmd.machine)
    if machine is None:
        raise AdmissionError(404, [("machine", f"no machine {cmd.machine}; register it first")], "not_found")
    now = step.clock.now()
    if not cmd.full and (machine.state != "up" or (machine.incarnation and cmd.incarnation
                                                    and cmd.incarnation != machine.incarnation)):
        # From a machine out of the cell, or from an agent process the last poll no longer saw.
        step.reply = {"machine": cmd.machine, "tasks": 0, "applied": False}
        return
    if cmd.full:
        machine.last_seen = now
        if cmd.incarnation:
            machine.incarnation = cmd.incarnation
    def judge(status: dict[str, Any]) -> None:
        if speculation.copy_report(step, cmd.machine, status, cmd.full):
            return  # a speculative copy's (corral.master.speculation)
        if state.draining and drains.old_copy_report(step, cmd.machine, status):
            return  # the old copy of a start-first move, draining on its source (drains.py)
        name, agent_state = status.get("task_id"), status.get("state")
        task = state.tasks.get(name)
        if (task is not None and task.state is TaskState.PENDING and state.machine_queues
                and queue_placement.on_report(step, task, cmd.machine, status, fits)):
            return  # a copy waiting in that machine's queue (queue_placement.py)
        if task is not None and task.state is TaskState.PENDING and failover.readopt(step, task, cmd.machine,
                                                                                    status, fits):
            return
        if task is None or task.state is not TaskState.RUNNING or task.machine != cmd.machine:
            if cmd.full and agent_state not in ENDED:  # an ended copy has nothing left to kill
                step.kill(name, cmd.machine, "not assigned to this machine")
            return
        if status.get("generation") != task.generation:
            return
        health.note_status(task, cmd.machine, status)
        _note_startup(step, task, cmd.machine, status)
        error = status.get("last_error") or ""
        if agent_state == "finished":
            speculation.first_copy_finished(step, task)
            step.emit(TaskEnded, task=name, via="finish", note=f"exit code {status.get('exit_code', 0)}",
                      machine=cmd.machine)
        elif agent_state == "failed":
            failover.failed(step, task, cmd.machine, error or f"exit code {status.get('exit_code')} after "
                                                               f"{status.get('failures')} failures")
        elif agent_state == "killed":
            step.emit(TaskEnded, task=name, via="evict", note=error or "killed on its machine", machine=cmd.machine)
        elif agent_state in ACTIVE:
            if agent_state == "running" and state.draining:
                drains.new_copy_running(step, task, cmd.machine)  # its old copy may stop now
            task.agent = status
            if cmd.full and status.get("opportunistic") is True and not task.opportunistic:
                step.upgrade(name, cmd.machine, allocs.launch(state, task))  # upgraded: its agent missed the word
            wait = status.get("restart_in_s")
            task.agent_next_try_at = now + float(wait) if agent_state == "backoff" and wait is not None else None

    # Copies started from that machine's queue are judged last: the ends reported with them (in any
    # order) are what made their room, and the master must see that room first.
    book = state.machine_queues
    later = [s for s in cmd.tasks if book and book.copy(s.get("task_id"), cmd.machine) is not None]
    deferred = {id(s) for s in later}
    for status in cmd.tasks:
        if id(status) not in deferred:
            judge(status)
    for status in later:
        judge(status)
    reject_dependents(step)
    if state.rolling:  # a task of a rolling job may have become healthy, or failed
        rollout.roll_jobs_of(step, [state.tasks.get(s.get("task_id")) for s in cmd.tasks])
    step.reply = {"machine": cmd.machine, "tasks": len(cmd.tasks)}


def startup_seconds(value: Any) -> bool:
    """Is ``value`` a TaskStatus ``startup_s`` (seconds, a finite number >= 0)?"""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _note_startup(step: Step, task: Any, machine: str, status: dict[str, Any]) -> None:
    """Once per placement: what its start cost there (an old agent says nothing, nor does the simulator's)."""
    startup = status.get("startup_s")
    if startup is None or task.started_generation == task.generation or not startup_seconds(startup):
        return
    step.emit(TaskStarted, task=task.name, machine=machine, generation=task.generation, startup_s=float(startup))
