"""Updates and rolling restarts.

A change of ``priority`` or ``tasks`` happens in place (running tasks keep
running; scaled-down tasks are killed, scaled-up ones are new and pending).
Any other change restarts the job's tasks on the new spec version, at most
``max_unavailable`` of the job's tasks down at once: each ``roll`` (after the
update, and at every ``Tick``) moves as many running tasks of an older version
back to pending (``restart``) as the budget allows.
"""

from __future__ import annotations

from corral.master.admission import AdmittedUpdate
from corral.master.events import JobUpdated, TaskEnded
from corral.master.jobs import job_reply
from corral.master.records import JobRecord
from corral.master.step import Step
from corral.model.job import TaskState


def update(step: Step, admitted: AdmittedUpdate, max_unavailable: int) -> None:
    job = admitted.job
    if not admitted.changed:
        step.reply = {**job_reply(job), "changed": []}
        return
    for task in step.state.tasks_of(job.id):
        if task.state is TaskState.RUNNING and task.index >= admitted.spec.tasks and not job.is_allocset:
            step.kill(task.name, task.machine, "the job was scaled down")
    step.emit(JobUpdated, job=job.id, spec=admitted.spec_dict, restart=admitted.restart,
              max_unavailable=max_unavailable, parsed=admitted.spec)
    roll(step, job)
    step.reply = {**job_reply(job), "changed": sorted(admitted.changed), "restart": admitted.restart}


def roll(step: Step, job: JobRecord) -> None:
    """Restart running tasks of an older spec version, keeping at most ``max_unavailable`` of the
    job's tasks down at once."""
    state = step.state
    if job.id not in state.rolling:
        return
    tasks = state.tasks_of(job.id)
    budget = job.max_unavailable - sum(1 for t in tasks if t.state is TaskState.PENDING)
    for task in sorted((t for t in tasks if t.state is TaskState.RUNNING and t.version != job.version),
                       key=lambda t: t.index):
        if budget <= 0:
            break
        note = f"rolling update to version {job.version}"
        step.kill(task.name, task.machine, note)
        step.emit(TaskEnded, task=task.name, via="restart", note=note, machine=task.machine)
        budget -= 1


def roll_all(step: Step) -> None:
    for jid in sorted(step.state.rolling):
        roll(step, step.state.jobs[jid])
