"""Jobs through their lifecycle: submitted, killed, rejected, waiting for the job they follow.

The transitions themselves are tables (corral.master.lifecycle) applied by
the state; this room decides which to emit for a job-level command and keeps
ordered jobs (``after: X``) honest: they wait while X lives, start once X
succeeded, and are rejected (killed, with the reason) once X ended any other
way.
"""

from __future__ import annotations

from typing import Any

from corral.master.admission import Admitted
from corral.master import allocs
from corral.master.events import AllocSetSubmitted, JobKilled, JobSubmitted, TaskEnded
from corral.master.records import JobRecord, job_id
from corral.master.step import Step
from corral.model.allocset import is_allocset
from corral.model.job import JobState, TaskState


def job_reply(job: JobRecord) -> dict[str, Any]:
    return {"job": job.id, "name": job.name, "user": job.user, "state": job.state.value,
            "version": job.version, "tasks": job.spec.tasks,
            **({"kind": "allocset"} if job.is_allocset else {})}


def submit(step: Step, admitted: Admitted, request_id: str | None) -> None:
    if is_allocset(admitted.spec):
        step.emit(AllocSetSubmitted, job=admitted.job, spec=admitted.spec_dict, request_id=request_id,
                  parsed=admitted.spec)
    else:
        step.emit(JobSubmitted, job=admitted.job, spec=admitted.spec_dict, request_id=request_id,
                  parsed=admitted.spec, opportunistic=admitted.opportunistic)
    step.reply = job_reply(step.state.jobs[admitted.job])


def kill(step: Step, job: JobRecord, note: str = "killed by its user") -> None:
    if not job.state.ended and job.is_allocset:
        allocs.kill_set(step, job, note)
        reject_dependents(step)
    elif not job.state.ended:
        for task in step.state.tasks_of(job.id):
            if task.state is TaskState.RUNNING:
                step.kill(task.name, task.machine, "the job was killed")
        step.emit(JobKilled, job=job.id, note=note)
        reject_dependents(step)
    step.reply = job_reply(job)


def reject_dependents(step: Step) -> None:
    """Kill the pending tasks of live jobs whose ``after`` job ended without succeeding, down a
    chain of ordered jobs in one step (a rejected job is killed, so the jobs after it are too)."""
    state = step.state
    rejected = True
    while rejected:
        rejected = False
        for jid in sorted(state.waiting):
            job = state.jobs[jid]
            if job.spec.after is None or job.state.ended:
                continue
            dep = state.jobs.get(job_id(job.spec.after, job.user))
            if dep is not None and dep.state.ended and dep.state is not JobState.SUCCEEDED:
                note = f"job {dep.name} it waits for {dep.state.value}"
                for task in state.tasks_of(job.id):
                    if task.state is TaskState.PENDING:
                        step.emit(TaskEnded, task=task.name, via="reject", note=note)
                        rejected = True


def waiting_reason(state: Any, job: JobRecord) -> str | None:
    """Why the tasks of ``job`` may not be scheduled yet (ordered jobs), or None."""
    if job.spec.after is None:
        return None
    dep = state.jobs.get(job_id(job.spec.after, job.user))
    if dep is None:
        return f"waiting for job {job.spec.after}, which does not exist"
    if dep.state is JobState.SUCCEEDED:
        return None
    return f"waiting for job {job.spec.after} to succeed (it is {dep.state.value})"
