"""Gangs at commit: a gang's placements in a plan commit all together or none of them.

A job whose spec says ``gang: true`` or ``min_tasks: N`` and has fewer than that many tasks
running is *short of its gang*: the scheduler places at least the missing number of its tasks
together in one plan, or none (corral/sched/gang.py), and the commit keeps it so. If any of
the gang's placements went stale (the task changed, its machine left, a victim moved, or the
tasks no longer fit together on their machines, victims gone), none of them commit: each is
stale, to be planned again with the others. Once the gang runs, the job's other tasks are
placed and committed one by one like any task. Pure: reads and restores the cell view only.
"""

from __future__ import annotations

from typing import Any, Callable

from corral.model.job import TaskState
from corral.sched.cellview import PlacementError
from corral.sched.plan import Placement, Plan
from corral.sched.request import PlacedTask


def gang_need(state: Any, job: Any) -> int:
    """How many more of ``job``'s tasks must be placed together before it runs as a gang (0: none)."""
    size = job.spec.gang_size
    if size <= 1:
        return 0
    live = state.job_live.get(job.id)
    running = live[1] if live else 0
    return max(0, size - running)


def is_gang_waiting(state: Any, job: Any) -> bool:
    """The job is short of its gang: its pending tasks wait for one another (never parked alone)."""
    return gang_need(state, job) > 0


def gang_groups(state: Any, plan: Plan) -> dict[str, list[Placement]]:
    """Each placement of a job short of its gang -> all that job's placements in ``plan``."""
    by_job: dict[str, list[Placement]] = {}
    for p in plan.placements:
        task = state.tasks.get(p.task_id)
        if task is None:
            continue
        job = state.jobs.get(task.job)
        if job is not None and gang_need(state, job) > 0:
            by_job.setdefault(job.id, []).append(p)
    return {p.task_id: group for group in by_job.values() for p in group}


def gang_staleness(state: Any, group: list[Placement], victims_of: dict[str, list], unchanged: Any,
                   why_stale: Callable[[Placement], str | None]) -> dict[str, str]:
    """Why the gang's placements ``group`` cannot all commit, task -> why ({} if they can).

    ``why_stale(p)`` checks one placement without its fit; the fit is then checked for the whole
    group at once (every victim gone, every task placed) unless none of its machines changed
    since the snapshot."""
    for p in group:
        why = why_stale(p)
        if why is not None:
            return _all_stale(group, p.task_id, why)
    machines = {p.machine for p in group}
    view = state.view
    if unchanged is not None and all(unchanged[view.index[m]] for m in machines):
        return {}
    failed = _fit_together(state, group, victims_of)
    return _all_stale(group, *failed) if failed else {}


def rest_of_gangs(state: Any, victims: list[str]) -> list[tuple[str, str, str]]:
    """The tasks to evict with preemption ``victims`` (already ended) so that no gang is left running
    short: ``(task, machine, why)`` for every running task of a gang job that now has fewer than its
    gang running. A gang is preempted whole, as it is placed whole."""
    out = []
    for job_id in dict.fromkeys(state.tasks[v].job for v in victims):
        job = state.jobs.get(job_id)
        if job is None or job.spec.gang_size <= 1:
            continue
        live = state.job_live.get(job_id)
        if not live or not 0 < live[1] < job.spec.gang_size:
            continue
        lost = ", ".join(v for v in victims if state.tasks[v].job == job_id)
        why = f"preempted with its gang ({lost} was preempted; fewer than {job.spec.gang_size} would be left)"
        out += [(t.name, t.machine, why) for t in state.tasks_of(job_id) if t.state is TaskState.RUNNING]
    return out


def _all_stale(group: list[Placement], task: str, why: str) -> dict[str, str]:
    return {p.task_id: why if p.task_id == task else f"{task} of its gang went stale: {why}" for p in group}


def _fit_together(state: Any, group: list[Placement], victims_of: dict[str, list]) -> tuple[str, str] | None:
    """``(task, why)`` for the first of the gang's tasks that does not fit with the others, or None.
    The view is left as it was."""
    view = state.view
    removed: list[tuple[PlacedTask, int]] = []
    placed: list[str] = []
    try:
        for p in group:
            for v in victims_of.get(p.task_id, []):
                if v.victim in view.where:
                    at = view.where[v.victim]
                    removed.append((view.remove(v.victim), at))
        for p in group:
            task = state.tasks[p.task_id]
            job = state.jobs[task.job]
            try:
                view.place(PlacedTask(task.name, job.id, job.user, job.request, tuple(p.gpus),
                                      ports=tuple(p.ports)), view.index[p.machine])
            except PlacementError as e:
                return p.task_id, str(e)
            placed.append(task.name)
        return None
    finally:
        for name in reversed(placed):
            view.remove(name)
        for task, at in reversed(removed):
            view.place(task, at)

