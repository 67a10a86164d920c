"""Plan commit (Omega, Borg §3.4): a consistent snapshot out, a plan back in, what still fits committed.

``snapshot`` hands out a copy of the cell view and the runnable tasks with
their requests (ordered jobs still waiting, lost tasks waiting their turn and
an empty cell get their pending reasons here instead). ``commit`` re-checks
each placement against the live state: the task must be unchanged (its
transition count), the machine still in the cell, each preemption victim still
there, and — unless the machine is unchanged since the snapshot — the task
must still fit once its victims are gone. What fails is *stale*, to be planned
again; what the scheduler could not place gets its pending reason and is
parked in the unschedulable queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from corral.master import allocs, drains
from corral.master.events import CopyEnded, TaskEnded, TaskScheduled
from corral.master.failover import Failover, failed_machines
from corral.master.gangs import gang_groups, gang_need, gang_staleness, is_gang_waiting, rest_of_gangs
from corral.master.jobs import waiting_reason
from corral.master.records import launch_body
from corral.master.step import Step
from corral.master.unschedulable import UnschedulableQueue, class_key
from corral.model.constraints import Constraint
from corral.model.job import TaskState
from corral.sched.cellview import CellView, PlacementError, _Vocabulary
from corral.sched.plan import Plan
from corral.sched.request import PendingTask, PlacedTask

P, R = TaskState.PENDING, TaskState.RUNNING
MACHINE_ATTRIBUTE = "corral.machine"  # a machine's own name, in snapshots that exclude machines by name


@dataclass
class Round:
    """One scheduling round's input: a snapshot of the view and the tasks to place."""

    view: CellView
    pending: list[PendingTask]
    tokens: dict[str, int]  # task -> its transition count at snapshot time (changed means stale)
    # Each machine's version in the live view at snapshot time: a machine still at it when the plan
    # is committed is as the scheduler saw it, so its placements need no second fit check.
    versions: Any = None
    lineage: object = None
    mark: int = -1  # the highest machine version at snapshot time (what pending reasons describe)
    # runnable tasks of jobs that run in alloc sets: placed at commit into their allocs (allocs.py)
    in_allocs: list[str] = field(default_factory=list)


def snapshot(state: Any, queue: UnschedulableQueue, failover: Failover, only: set[str] | None = None,
             keep: Callable[[Any], bool] | None = None) -> Round:
    """A consistent copy of the cell and the runnable tasks to plan (all, or those in ``only``; with
    ``keep``, only those of jobs it keeps: a scheduler profile's share). The view is the whole cell."""
    pending = []
    others: set[str] = set()  # jobs another profile places: not this round's to touch
    tokens = {}
    reasons: dict[str, str | None] = {}
    failover.reschedule.release(lambda n: n in state.pending)
    held = failover.reschedule.positions()
    excluded = False
    in_allocs = []
    queue.wake(state.view)
    for name in (list(queue.runnable) if only is None else [n for n in queue.runnable if n in only]):
        task = state.tasks[name]
        job = state.jobs[task.job]
        if job.id in others:
            continue
        if job.id not in reasons:
            if keep is not None and not keep(job):
                others.add(job.id)
                continue
            reasons[job.id] = waiting_reason(state, job)
        if reasons[job.id] is not None:
            task.reason, task.explanation = reasons[job.id], None
            continue
        if not len(state.view):
            task.reason, task.explanation = "0/0 machines are available: the cell has no machines up.", None
            continue
        if name in held:
            task.reason, task.explanation = failover.reschedule.describe(name, held[name]), None
            continue
        if job.spec.alloc:
            in_allocs.append(name)
            continue
        tried = failed_machines(task.history) if task.history and task.history[-1].via == "failover" else []
        excluded = excluded or bool(tried)
        pending.append(pending_task(state, task, tried))
        tokens[name] = len(task.history)
    live = state.view
    view = live.copy()
    if excluded:
        name_machines(view)
    mark = int(live.version.max()) if len(live) else -1
    return Round(view, pending, tokens, live.version.copy(), live.lineage, mark, in_allocs)


def pending_task(state: Any, task: Any, tried: Any = ()) -> PendingTask:
    """What the scheduler is asked to place for pending ``task``; ``tried``: machines it failed on
    (elsewhere first: the snapshot's view then needs ``name_machines``)."""
    job = state.jobs[task.job]
    request = job.request_of_task(task)  # an opportunistic task asks at priority 0
    if tried:
        request = replace(request, constraints=request.constraints
                          + (Constraint(MACHINE_ATTRIBUTE, "not_in", tuple(sorted(tried))),))
    return PendingTask(task.name, job.id, job.user, request, task.index, job.submitted_seq, gang_need(state, job))


def commit(step: Step, rnd: Round, plan: Plan, queue: UnschedulableQueue) -> dict[str, str]:
    """Commit what of ``plan`` still holds; the stale placements, task -> why."""
    state, view = step.state, step.state.view
    victims_of: dict[str, list] = {}
    for p in plan.preemptions:
        victims_of.setdefault(p.by, []).append(p)
    stale: dict[str, str] = {}
    unchanged = (view.version == rnd.versions) if rnd.lineage is view.lineage else None
    gangs = gang_groups(state, plan)  # task -> the placements of its gang (all commit, or none)
    done: set[str] = set()
    for p in plan.placements:
        if p.task_id in done:
            continue
        group = gangs.get(p.task_id)
        if group is not None:
            done.update(q.task_id for q in group)
            whys = gang_staleness(state, group, victims_of, unchanged,
                                  lambda q: _why_stale(state, rnd, q, victims_of, unchanged, fit=False))
            if whys:
                stale.update(whys)
            else:
                for q in group:
                    _start(step, state, q, victims_of)
            continue
        why = _why_stale(state, rnd, p, victims_of, unchanged)
        if why is not None:
            stale[p.task_id] = why
            continue
        _start(step, state, p, victims_of)
    _explain_unplaced(state, rnd, plan, queue)
    allocs.place_members(step, rnd.in_allocs)
    for name, why in stale.items():
        task = state.tasks.get(name)
        if task is not None and task.state is P:
            task.reason, task.explanation = f"its placement went stale ({why}); it will be placed again", None
            queue.unpark([name])
    return stale


def _why_stale(state: Any, rnd: Round, p: Any, victims_of: dict[str, list], unchanged: Any,
               fit: bool = True) -> str | None:
    """Why placement ``p`` no longer holds, or None; ``fit=False`` leaves out the fit check."""
    task = state.tasks.get(p.task_id)
    if task is None or task.state is not P or len(task.history) != rnd.tokens.get(p.task_id):
        return "the task changed while it was being placed"
    if p.machine not in state.view.index:
        return f"machine {p.machine} left the cell"
    victims = victims_of.get(p.task_id, [])
    for v in victims:
        copy = state.copy_by_id(v.victim)  # a speculative copy may be preempted like any batch task
        if copy is not None and copy.machine == p.machine:
            continue
        drain = drains.by_hold(state, v.victim)  # a start-first move's old copy, draining (drains.py)
        if drain is not None and drain.machine == p.machine:
            continue
        victim = state.tasks.get(v.victim)
        if victim is None or victim.state is not R or victim.machine != p.machine:
            return f"preemption victim {v.victim} is no longer on {p.machine}"
    if fit and (unchanged is None or not unchanged[state.view.index[p.machine]] or _short(state, task, p)):
        return try_fit(state, task, p.machine, p.gpus, [v.victim for v in victims], p.ports,
                       p.reclaimed)
    return None


def _short(state: Any, task: Any, p: Any) -> bool:
    """A machine unchanged since the snapshot needs no second fit check, but one look at its free
    room is cheap: a plan that asks for more than is left there (seen under concurrent updates and
    several schedulers) is then judged by the full check, stale instead of an event that cannot apply."""
    if p.reclaimed:
        return False
    view = state.view
    return bool((view.free[view.index[p.machine]] < state.jobs[task.job].request_of_task(task).vector).any())


def _start(step: Step, state: Any, p: Any, victims_of: dict[str, list]) -> None:
    task = state.tasks[p.task_id]
    for v in victims_of.get(p.task_id, []):
        copy = state.copy_by_id(v.victim)
        if copy is not None:  # a speculative copy: it goes, its task runs on (corral.master.speculation)
            step.kill(copy.id, copy.machine, v.reason)
            step.emit(CopyEnded, task=copy.task, copy=copy.copy, via="cancel", note=f"preempted: {v.reason}",
                      machine=copy.machine)
        drain = drains.by_hold(state, v.victim)
        if drain is not None:  # its room goes to the placement now, the new copy runs on as the task
            drains.preempt(step, drain, v.reason)
    victims = [v for v in victims_of.get(p.task_id, [])
               if v.victim in state.tasks and state.tasks[v.victim].state is R]  # not yet evicted
    for v in victims:
        if state.is_alloc(v.victim):  # an alloc preempted takes its tasks with it; no agent runs it
            allocs.evict_members(step, v.victim, "evict", f"its alloc {allocs.label(state, v.victim)} "
                                                           f"was preempted: {v.reason}")
        else:
            step.kill(v.victim, p.machine, v.reason)
        step.emit(TaskEnded, task=v.victim, via="evict", note=v.reason, machine=p.machine)
        state.tasks[v.victim].reason = v.reason
    for name, machine, why in rest_of_gangs(state, [v.victim for v in victims]):
        step.kill(name, machine, why)
        step.emit(TaskEnded, task=name, via="evict", note=why, machine=machine)
        state.tasks[name].reason = why
    step.emit(TaskScheduled, task=task.name, machine=p.machine, gpus=tuple(p.gpus),
              generation=task.generation + 1, ports=tuple(p.ports), reclaimed=p.reclaimed)
    if not state.jobs[task.job].is_allocset:  # an alloc holds room; no agent runs it (allocs.py)
        step.start(task.name, p.machine, launch_body(state.jobs[task.job], task))


def _explain_unplaced(state: Any, rnd: Round, plan: Plan, queue: UnschedulableQueue) -> None:
    shared: dict[int, tuple[str, dict]] = {}
    park = []
    for name, explanation in plan.unplaced.items():
        task = state.tasks.get(name)
        if task is None or task.state is not P:
            continue
        key = id(explanation)
        if key not in shared:
            shared[key] = (readable(explanation.summary()), explanation.to_dict())
        task.reason, task.explanation = shared[key]
        if is_gang_waiting(state, state.jobs[task.job]):
            continue  # a gang's tasks wait for one another: never parked one by one (corral/master/gangs.py)
        park.append((name, class_key(state.jobs[task.job].request_of_task(task)), shared[key]))
    if park:
        queue.park(park, rnd.mark)


def try_fit(state: Any, task: Any, machine: str, gpus: tuple[int, ...], victims: list[str],
            ports: tuple[int, ...] = (), reclaimed: bool = False) -> str | None:
    """Would ``task`` fit on ``machine`` now, once ``victims`` are gone (``reclaimed``: in the room
    reservations leave, else against limits)? The view is left as it was."""
    view = state.view
    job = state.jobs[task.job]
    request = job.request_of_task(task)
    removed = [view.remove(v) for v in victims]
    at = view.index[machine]
    try:
        if reclaimed and (view.reclaim_room(at) < request.vector).any():
            return f"task {task.name} no longer fits in the room reservations leave on {machine}"
        view.place(PlacedTask(task.name, job.id, job.user, request, tuple(gpus), ports=tuple(ports),
                              reclaimed=reclaimed), at)
    except PlacementError as e:
        return str(e)
    else:
        view.remove(task.name)
        return None
    finally:
        for placed in removed:
            view.place(placed, at)


def readable(summary: str) -> str:
    """A failed-over task's exclusion in words: 'where it failed before (m1)'."""
    return summary.replace(f"constraint {MACHINE_ATTRIBUTE} not in ", "where it failed before ")


def name_machines(view: CellView) -> None:
    """Give the snapshot ``view`` an attribute holding each machine's name (its own copy of the maps)."""
    view.attributes = {**view.attributes, MACHINE_ATTRIBUTE: np.arange(len(view), dtype=np.int32)}
    view.vocabularies = {**view.vocabularies, MACHINE_ATTRIBUTE: _Vocabulary(dict(view.index))}
