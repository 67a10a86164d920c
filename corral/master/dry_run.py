"""What a submit or an update would do now, without doing it (``?dry_run=true``, ``corral plan``).

The master's own code on a copy, not a model of it: the cell state is copied
through its checkpoint form (under the caller's lock), and a scratch
:class:`MasterCore` with the same quotas and scheduler configuration handles
the command and runs the scheduling round. The answer is read back from what
that core emitted and planned: the tasks it would place (machine and score),
the tasks it would preempt (job, task, priority), the tasks that would stay
pending and why; for an update, which running tasks a rolling update would
restart and in what waves (the rolls that follow without time passing or a
task failing). Nothing is stored, no effect reaches an agent, and the copy is
dropped; a refusal (bad spec, quota) is the same error a real submit gets.

Soft state is not copied: the scratch core has no lost-task reschedule queue,
no usage reports and no parked classes, so it may place a task the live
master would still hold back for a moment.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from corral.master import drains
from corral.master.commands import Submit, Tick, Update
from corral.master.core import MasterCore
from corral.master.events import AllocSetSubmitted, JobSubmitted, JobUpdated, TaskEnded, TaskScheduled
from corral.master.state import CellState
from corral.model.job import TaskState
from corral.sched.plan import Plan
from corral.sched.scheduler import Scheduler

MAX_WAVES = 1000  # a rolling update of a job this large is described up to here
MAX_PLACED_SHOWN = 1000  # placements listed; ``placed_count`` counts them all
MAX_PENDING_SHOWN = 100  # pending tasks listed with their reasons; ``pending_count`` counts them all


class _Recording:
    """The scheduler, keeping every plan it made (the scores and victims the events do not carry)."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler, self.plans = scheduler, []

    def schedule(self, view: Any, pending: list) -> Plan:
        plan = self.scheduler.schedule(view, pending)
        self.plans.append(plan)
        return plan


def scratch_of(core: MasterCore) -> MasterCore:
    """A core on a copy of ``core``'s state; call under the lock that guards ``core``."""
    copy = CellState.from_dict(core.state.to_dict())
    for drain in core.state.draining.values():  # soft, not in to_dict: their held rooms are not free
        drains.hold(copy, dataclasses.replace(drain))
    return MasterCore(copy, clock=core.clock, quotas=core.quotas, scheduler=Scheduler(core.scheduler.config),
                      cell=core.state.cell, poll_interval_s=core.poll_interval_s,
                      profiles=core.profiles.profiles)


def _round(scratch: MasterCore, job_id: str, into: dict[str, Any]) -> list[Any]:
    """One scheduling round on the scratch core; adds the job's placements and preemptions to ``into``."""
    job = scratch.state.jobs.get(job_id)
    profile = scratch.profiles.profiles.owner(job.spec) if job is not None else "default"
    recording = _Recording(scratch.profiles.scheduler(profile))  # the job's own scheduler profile plans it
    out = scratch.schedule(scheduler=recording, profile=profile)
    scores = {p.task_id: p.score for plan in recording.plans for p in plan.placements}
    victims = {v.victim: v for plan in recording.plans for v in plan.preemptions}
    state = scratch.state
    for event in out.events:
        if isinstance(event, TaskScheduled) and state.tasks[event.task].job == job_id:
            into["placed"].append({"task": event.task, "machine": event.machine,
                                   "score": round(float(scores.get(event.task, 0.0)), 6),
                                   "gpus": list(event.gpus), "ports": list(event.ports)})
        elif isinstance(event, TaskEnded) and event.via == "evict" and event.task in victims:
            preemption = victims[event.task]
            if state.tasks[preemption.by].job != job_id:
                continue
            victim = state.tasks[event.task]
            into["preempted"].append({"job": victim.job, "task": victim.name, "machine": preemption.machine,
                                      "priority": state.jobs[victim.job].spec.priority, "by": preemption.by,
                                      "reason": preemption.reason})
    return out.events


def _pending(scratch: MasterCore, job_id: str) -> list[dict[str, str]]:
    """The first ``MAX_PENDING_SHOWN`` waiting tasks with their reasons (a reason costs an explanation)."""
    waiting = []
    for task in scratch.state.tasks_of(job_id):
        if task.state is TaskState.PENDING:
            reason, _ = scratch.pending_reason(task)
            waiting.append({"task": task.name, "reason": reason or "not planned yet"})
            if len(waiting) == MAX_PENDING_SHOWN:
                break
    return waiting


def _pending_count(scratch: MasterCore, job_id: str) -> int:
    return sum(1 for t in scratch.state.tasks_of(job_id) if t.state is TaskState.PENDING)


def _job_of(events: list[Any]) -> str:
    for event in events:
        if isinstance(event, (JobSubmitted, JobUpdated, AllocSetSubmitted)):
            return event.job
    raise LookupError("the command emitted no job")


def dry_submit(scratch: MasterCore, spec: Any) -> dict[str, Any]:
    """What submitting ``spec`` would do on ``scratch`` (which it changes: use it once)."""
    out = scratch.handle(Submit(spec))  # AdmissionError (spec, quota) propagates: the real refusal
    job_id = _job_of(out.events)
    answer: dict[str, Any] = {"dry_run": True, "job": job_id, "admitted": True, "placed": [], "preempted": []}
    _round(scratch, job_id, answer)
    answer["pending"] = _pending(scratch, job_id)
    answer["pending_count"] = _pending_count(scratch, job_id)
    _cap_placed(answer)
    return answer


def _cap_placed(answer: dict[str, Any]) -> None:
    """The first ``MAX_PLACED_SHOWN`` placements; ``placed_count`` counts them all (a huge job's answer stays small)."""
    answer["placed_count"] = len(answer["placed"])
    del answer["placed"][MAX_PLACED_SHOWN:]


def dry_update(scratch: MasterCore, spec: Any, max_unavailable: int = 1) -> dict[str, Any]:
    """What updating a job to ``spec`` would do on ``scratch``: the reply, then the restart waves."""
    out = scratch.handle(Update(spec, max_unavailable=max_unavailable))
    answer: dict[str, Any] = {"dry_run": True, **{k: out.reply[k] for k in ("job", "changed", "restart")
                                                  if k in out.reply},
                              "placed": [], "preempted": [], "waves": []}
    if not out.reply.get("changed"):
        answer["pending"] = []
        return answer
    job_id = out.reply.get("job") or _job_of(out.events)
    events = list(out.events)
    for _ in range(MAX_WAVES):
        wave = [e.task for e in events if isinstance(e, TaskEnded) and e.via == "restart"]
        if wave:
            answer["waves"].append(sorted(wave, key=lambda n: scratch.state.tasks[n].index))
        placed = _round(scratch, job_id, answer)
        if job_id not in scratch.state.rolling or not (wave or placed):
            break
        events = scratch.handle(Tick()).events
    answer["restarts"] = sum(len(w) for w in answer["waves"])
    answer["pending"] = _pending(scratch, job_id)
    answer["pending_count"] = _pending_count(scratch, job_id)
    _cap_placed(answer)
    return answer


def run(master: Any, cmd: Submit | Update) -> dict[str, Any]:
    """The dry run of ``cmd`` against the live ``master`` (its lock held only while copying)."""
    with master.lock:
        scratch = scratch_of(master.core)
    if isinstance(cmd, Submit):
        return dry_submit(scratch, cmd.spec)
    return dry_update(scratch, cmd.spec, cmd.max_unavailable)
