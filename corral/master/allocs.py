"""Alloc sets in the master: allocs as their set's "tasks", and the tasks that run inside them.

An alloc set (``kind: allocset``, corral.model.allocset) is admitted, charged
to quota and kept like a job: its allocs are its tasks in the state, placed on
machines by the scheduler (they hold their resources in the cell view), lost
with their machine, preempted by higher priorities, placed again. No agent
runs an alloc: the master sends no launch for one and does not expect one in
an agent's report or assignments.

A job with ``alloc: SET`` asks the machine for nothing (its tasks sit in the
view with no resources: the alloc holds them, so nothing is counted twice);
each pending task is placed at commit time into an alloc of the set with room
(corral.sched.allocs: task ``i`` in alloc ``i``, or any alloc by the spec),
on that alloc's machine, and its launch carries the alloc (``AllocRef``: id
and limits) so its agent runs it under the alloc's parent cgroup.

* a task that stops, restarts or is rolled keeps nothing itself but its alloc
  keeps the room: it goes back into the same alloc, on the same machine;
* an alloc that leaves its machine (preempted, lost, killed) takes its tasks
  with it: preempted and lost allocs' tasks go back to pending and wait for
  their alloc to be placed again;
* killing an alloc set kills the jobs that run in it.

Sans-IO: every function reads the state and writes through a :class:`Step`.
"""

from __future__ import annotations

from typing import Any

from corral.master.events import AllocSetKilled, JobKilled, TaskEnded, TaskScheduled
from corral.master.records import JobRecord, job_id, launch_body
from corral.master.step import Step
from corral.model.job import TaskState
from corral.sched.allocs import AllocRoom, choose, take

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


def label(state: Any, alloc: str) -> str:
    """How a user names alloc ``alloc`` (its task name): ``<set>/<index>``."""
    task = state.tasks[alloc]
    return f"{state.jobs[task.job].name}/{task.index}"


def set_of(state: Any, job: JobRecord) -> JobRecord | None:
    """The alloc set ``job`` runs in (live or not), or None if it targets none or it does not exist."""
    if not job.spec.alloc:
        return None
    found = state.jobs.get(job_id(job.spec.alloc, job.user))
    return found if found is not None and found.is_allocset else None


def rooms(state: Any, allocset: JobRecord) -> list[AllocRoom]:
    """The live allocs of ``allocset`` by index, with what their tasks use."""
    out = []
    capacity = allocset.spec.resources.to_resources().vector()
    for task in state.tasks_of(allocset.id):
        if task.state is D:
            continue
        placed = task.state is R
        out.append(AllocRoom(task.name, f"{allocset.name}/{task.index}", task.index,
                             task.machine if placed else None, capacity, state.alloc_used(task.name),
                             "" if placed else task.reason))
    return sorted(out, key=lambda r: r.index)


def alloc_ref(state: Any, task: Any) -> dict[str, Any] | None:
    """The ``AllocRef`` of the alloc ``task`` runs in (the launch's ``alloc``), or None."""
    if task.alloc is None:
        return None
    allocset = state.jobs[state.tasks[task.alloc].job]
    r = allocset.spec.resources
    return {"id": task.alloc, "resources": {"cpu": r.cpu, "memory": r.memory, "disk": r.disk}}


def launch(state: Any, task: Any) -> dict[str, Any]:
    """The TaskLaunch body for ``task``, with its alloc when it runs in one."""
    return launch_body(state.jobs[task.job], task, alloc_ref(state, task))


def place_members(step: Step, names: list[str]) -> int:
    """Place the pending tasks ``names`` (of jobs that target alloc sets) into their sets' allocs,
    first come first served; each one that does not fit gets the reason. How many were placed."""
    state = step.state
    by_set: dict[str, list[AllocRoom]] = {}
    placed = 0
    for name in names:
        task = state.tasks.get(name)
        if task is None or task.state is not P:
            continue
        job = state.jobs[task.job]
        allocset = set_of(state, job)
        if allocset is None or allocset.state.ended:
            task.reason, task.explanation = f"its alloc set {job.spec.alloc} is not live", None
            continue
        if allocset.id not in by_set:
            by_set[allocset.id] = rooms(state, allocset)
        need = job.need_of(job.version)
        previous = next((t.machine for t in reversed(task.history) if t.machine), None)
        choice = choose(by_set[allocset.id], need, task.index, job.spec.alloc_placement, previous, allocset.name)
        if choice.room is None:
            task.reason, task.explanation = choice.reason, None
            continue
        take(choice.room, need)
        step.emit(TaskScheduled, task=name, machine=choice.room.machine, generation=task.generation + 1,
                  alloc=choice.room.alloc)
        step.start(name, choice.room.machine, launch(state, task))
        placed += 1
    return placed


def evict_members(step: Step, alloc: str, via: str, note: str) -> None:
    """The tasks in ``alloc`` leave with it (``via`` evict: back to pending, to wait for their alloc)."""
    state = step.state
    for name in sorted(state.alloc_members.get(alloc, ())):
        task = state.tasks[name]
        step.kill(name, task.machine, note)
        step.emit(TaskEnded, task=name, via=via, note=note, machine=task.machine)


def kill_set(step: Step, allocset: JobRecord, note: str) -> None:
    """Kill ``allocset``: first every live job that runs in it (their tasks are killed), then the set."""
    state = step.state
    for job in list(state.jobs.values()):
        if not job.state.ended and job.spec.alloc == allocset.name and job.user == allocset.user:
            for task in state.tasks_of(job.id):
                if task.state is R:
                    step.kill(task.name, task.machine, f"its alloc set {allocset.name} was killed")
            step.emit(JobKilled, job=job.id, note=f"its alloc set {allocset.name} was killed")
    step.emit(AllocSetKilled, job=allocset.id, note=note)


def summary(state: Any, allocset: JobRecord) -> dict[str, Any]:
    """An alloc set and its allocs: where each is, what it holds, what its tasks use, which tasks."""
    r = allocset.spec.resources
    allocs = []
    for task in state.tasks_of(allocset.id):
        used = state.alloc_used(task.name)
        members = sorted(state.alloc_members.get(task.name, ()))
        allocs.append({"alloc": f"{allocset.name}/{task.index}", "id": task.name, "index": task.index,
                       "state": task.state.value, "machine": task.machine,
                       "used": {"cpu": int(used[0]), "memory": int(used[1]), "disk": int(used[2])},
                       "tasks": members, "reason": task.reason if task.state is P else ""})
    return {"allocset": allocset.id, "name": allocset.name, "user": allocset.user,
            "state": allocset.state.value, "priority": allocset.spec.priority, "count": allocset.spec.count,
            "resources": {"cpu": r.cpu, "memory": r.memory, "disk": r.disk},
            "jobs": sorted(j.id for j in state.jobs.values() if not j.state.ended and set_of(state, j) is allocset),
            "allocs": allocs}

