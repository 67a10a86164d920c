"""Updates, health-gated rolling restarts and rollbacks.

A change of ``priority``, ``tasks`` or ``update`` happens in place (running
tasks keep running; scaled-down tasks are killed, scaled-up ones are new and
pending). Any other change restarts the job's tasks on the new spec version,
at most ``max_unavailable`` of the job's tasks unavailable at once: each
``roll`` (after the update, after a report about the job's tasks, and at every
``Tick``) moves as many running tasks of an older version back to pending
(``restart``) as the budget allows. Unavailable are the pending tasks and the
running ones that are not up: a task whose spec has a ``health_check`` is up
only once its agent reports it healthy (corral.master.health).

A task of the new version *fails* when, since the update, it failed over or
failed (a ``failover``/``fail`` transition), its agent reports it unhealthy,
or its agent restarted it after a failure. The first failed task pauses the
rollout (nothing more is restarted; the reason names the task and its error)
until a new update or a rollback. With ``update.auto_rollback_after: N`` in
the spec, N failed tasks roll the job back to its previous spec; ``corral
rollback JOB`` (``POST /api/v1/jobs/{job}/rollback``) does it on request. A
rollback is an update to the previous spec (a new version, logged as a
``job_updated`` event whose ``rollback`` says why): tasks still running that
spec keep running, the others roll as in any update. A rollback is never
rolled back automatically, and it is not checked against quota (it returns
to a spec that was admitted). A rollout is over once no task runs an older
version; the rollout's state is derived from the tasks (nothing more is
logged), so a restarted master sees the same rollout.
"""

from __future__ import annotations

from typing import Any

from corral.master import health
from corral.master.admission import AdmittedUpdate, find_job
from corral.master.errors import AdmissionError
from corral.master.events import JobUpdated, TaskEnded
from corral.master.jobs import job_reply
from corral.master.records import JobRecord
from corral.master.step import Step
from corral.model.job import TaskState
from corral.model.spec import parse_job_spec

FAILED_VIA = ("failover", "fail")


def update(step: Step, admitted: AdmittedUpdate, max_unavailable: int) -> None:
    job = admitted.job
    if not admitted.changed:
        step.reply = {**job_reply(job), "changed": []}
        return
    for task in step.state.tasks_of(job.id):
        if task.state is TaskState.RUNNING and task.index >= admitted.spec.tasks and not job.is_allocset:
            step.kill(task.name, task.machine, "the job was scaled down")
    step.emit(JobUpdated, job=job.id, spec=admitted.spec_dict, restart=admitted.restart,
              max_unavailable=max_unavailable, parsed=admitted.spec, opportunistic=admitted.opportunistic)
    roll(step, job)
    step.reply = {**job_reply(job), "changed": sorted(admitted.changed), "restart": admitted.restart}


def rollback(step: Step, jid: str, reason: str = "rolled back by its user") -> None:
    """Roll ``jid`` back to the spec it had before its last update (409 when there is none)."""
    job = find_job(step.state, jid)
    if job.state.ended:
        raise AdmissionError(409, [("job", f"job {job.id} has {job.state.value}; submit it again instead")],
                             "conflict")
    if job.previous_spec is None:
        raise AdmissionError(409, [("job", f"job {job.id} has not been updated: there is no version to roll "
                                           f"back to")], "conflict")
    _roll_back(step, job, reason)
    step.reply = {**job_reply(job), "rollback": reason}


def _roll_back(step: Step, job: JobRecord, reason: str) -> None:
    spec = job.previous_spec
    step.emit(JobUpdated, job=job.id, spec=spec, restart=True, max_unavailable=job.max_unavailable,
              parsed=parse_job_spec(spec), rollback=reason)
    roll(step, job)


def roll(step: Step, job: JobRecord) -> None:
    """Restart running tasks of an older spec version, keeping at most ``max_unavailable`` of the
    job's tasks unavailable at once; pause, or roll back, when tasks of the new version fail."""
    state = step.state
    if job.id not in state.rolling:
        return
    tasks = state.tasks_of(job.id)
    failed = failed_tasks(job, tasks)
    if failed:
        limit = job.spec.update.auto_rollback_after if job.spec.update is not None else None
        if limit is not None and len(failed) >= limit and not job.rollback and job.previous_spec is not None:
            task, why = failed[0]
            _roll_back(step, job, f"{len(failed)} task{'s' if len(failed) != 1 else ''} of version {job.version} "
                                  f"failed (auto_rollback_after: {limit}); task {task.index}: {why}")
        return  # paused
    budget = job.max_unavailable - sum(1 for t in tasks if t.state is not TaskState.DEAD
                                       and not health.available(job, t))
    # An old task that is down already (unhealthy, not yet healthy) goes first and costs nothing.
    old = sorted(((health.available(job, t), t.index, t) for t in tasks
                  if t.state is TaskState.RUNNING and t.version != job.version), key=lambda x: x[:2])
    for up, _, task in old:
        if up and budget <= 0:
            break
        note = f"rolling update to version {job.version}"
        step.kill(task.name, task.machine, note)
        step.emit(TaskEnded, task=task.name, via="restart", note=note, machine=task.machine)
        budget -= 1 if up else 0


def roll_all(step: Step) -> None:
    for jid in sorted(step.state.rolling):
        roll(step, step.state.jobs[jid])


def roll_jobs_of(step: Step, tasks: list[Any]) -> None:
    """Roll the rolling jobs these tasks belong to (after a report about them)."""
    for jid in sorted({t.job for t in tasks if t is not None} & step.state.rolling):
        roll(step, step.state.jobs[jid])


def updated_at(job: JobRecord) -> int:
    """The seq of the job's last update (0 if none)."""
    for t in reversed(job.history):
        if t.via == "update":
            return t.seq
    return 0


def failed_tasks(job: JobRecord, tasks: list[Any]) -> list[tuple[Any, str]]:
    """The tasks of the job's current version that failed since its last update, with why, by index."""
    since = updated_at(job)
    out = []
    for task in sorted(tasks, key=lambda t: t.index):
        if task.version != job.version or task.state is TaskState.DEAD:
            continue
        why = next((t.note for t in reversed(task.history) if t.seq > since and t.via in FAILED_VIA), None)
        agent = task.agent or {}
        if why is None and task.state is TaskState.RUNNING and agent.get("generation") == task.generation:
            if agent.get("healthy") is False:
                why = agent.get("last_error") or "it failed its health check"
            elif agent.get("failures"):
                why = agent.get("last_error") or "its process failed"
        if why is not None:
            out.append((task, " ".join(str(why).split())[:200]))
    return out


def rollout_view(state: Any, job: JobRecord) -> dict[str, Any] | None:
    """What ``corral status`` shows of a job's rollout: ``{"version", "tasks", "updated", "state",
    "reason", "failed"}`` while it rolls (``rolling``, ``paused`` or ``rolling back``); ``rolled
    back`` once a rollback is over; None otherwise."""
    if job.state.ended:
        return None
    tasks = [t for t in state.tasks_of(job.id) if t.state is not TaskState.DEAD]
    updated = sum(1 for t in tasks if t.version == job.version and health.available(job, t))
    if job.id not in state.rolling:
        if not job.rollback:
            return None
        return {"version": job.version, "tasks": len(tasks), "updated": updated, "state": "rolled back",
                "reason": job.rollback, "failed": []}
    failed = failed_tasks(job, tasks)
    if failed:
        task, why = failed[0]
        what, reason = "paused", (f"task {task.index} of version {job.version} failed: {why}; waiting for an "
                                  f"update or `corral rollback`")
        if job.rollback:
            what, reason = "paused", f"{reason} (rolling back: {job.rollback})"
    elif job.rollback:
        what, reason = "rolling back", job.rollback
    else:
        what, reason = "rolling", f"at most {job.max_unavailable} unavailable at once"
    return {"version": job.version, "tasks": len(tasks), "updated": updated, "state": what, "reason": reason,
            "failed": [t.index for t, _ in failed]}
