"""Speculative copies of stragglers, master side: when to copy (at every ``Tick``), where, and who wins.

The rule is corral.sched.speculation's; the numbers it needs come from the job's own task
records (:func:`finished_runtimes`, :func:`running_elapsed`), so a runtime estimator may replace
them. Only running batch work of a job with ``speculation`` on is copied: never production,
monitoring or latency-sensitive work, never a task in an alloc, with GPUs or dynamic ports (the
copy would need its own picks), and each task at most once. The copy goes to a machine the
scheduler's own checkers accept for the task, with the task's machine and its failure domains
(``SpeculationConfig.avoid``: rack and power by default) excluded by constraints; of those, the
one with the most free CPU.

Every decision is an event (``copy_scheduled`` with why, ``copy_ended`` with how), so a master
rebuilt from its log holds the same copies; kills go out as ``KillTask`` effects.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from corral.master.copies import CopyRecord, copy_id, parse_copy_id
from corral.master.events import CopyEnded, CopyScheduled, TaskEnded
from corral.master.records import JobRecord, TaskRecord, launch_body
from corral.master.step import Step
from corral.model.constraints import Constraint
from corral.model.job import AppClass, TaskState
from corral.model.machine import HOST, POWER, RACK
from corral.model.priority import Band, band_of
from corral.sched.checkers import default_checkers
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest
from corral.sched.speculation import SpeculationConfig, stragglers

R = TaskState.RUNNING
ENDED = ("finished", "failed", "killed")


def _entered_running(task: TaskRecord) -> float | None:
    for t in reversed(task.history):
        if t.new == "running" and t.old != "running":
            return t.t
    return None


def finished_runtimes(tasks: Iterable[TaskRecord]) -> list[float]:
    """Seconds from placement to finish of each finished task (its last run)."""
    out = []
    for task in tasks:
        if task.state is TaskState.DEAD and task.history and task.history[-1].via == "finish":
            start = _entered_running(task)
            if start is not None:
                out.append(task.history[-1].t - start)
    return out


class SiblingRuntimes:
    """:func:`finished_runtimes` of each job, kept until another of its tasks ends or its spec
    changes: every tick asks it of every running job, and a job of thousands of tasks would
    otherwise have each record's history walked again each time."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[int, int, int], list[float]]] = {}

    def __call__(self, state: Any, job: Any) -> list[float]:
        pending, running = state.job_live.get(job.id, (0, 0))
        names = state.job_tasks.get(job.id, ())
        key = (job.version, len(names) - pending - running, len(names))  # ended tasks only ever grow
        kept = self._kept.get(job.id)
        if kept is None or kept[0] != key:
            kept = self._kept[job.id] = (key, finished_runtimes(state.tasks[n] for n in names))
        return kept[1]

    def keep_only(self, jobs: set[str]) -> None:
        """Forget the jobs not in ``jobs`` (those no longer running)."""
        if len(self._kept) > len(jobs):
            self._kept = {j: v for j, v in self._kept.items() if j in jobs}


def running_elapsed(task: TaskRecord, now: float) -> float:
    start = _entered_running(task)
    return 0.0 if start is None else now - start


def eligible(job: JobRecord) -> bool:
    if job.is_allocset:  # reservations: no agent runs them
        return False
    spec = job.spec
    if not spec.speculation or spec.alloc or spec.appclass is not AppClass.BATCH:
        return False
    r = spec.resources.to_resources()
    return band_of(spec.priority) not in (Band.PRODUCTION, Band.MONITORING) and not r.gpu and not r.dynamic_ports


def display(task: str) -> str:
    """``3.sort.alice`` for ``3.sort.alice.local``: the task as its user names it."""
    return task.rsplit(".", 1)[0]


def choose_machine(state: Any, task: TaskRecord, domains: tuple[str, ...] = (RACK, POWER)) -> str | None:
    """Where a copy of ``task`` may run: a machine its checkers accept, not its own machine nor in
    its machine's failure ``domains`` (rack, power); the one with the most free CPU (None: nowhere)."""
    here = state.machines[task.machine]
    avoid = [Constraint(HOST, "!=", (task.machine,))]
    avoid += [Constraint(d, "!=", (here.attributes[d],)) for d in domains if here.attributes.get(d)]
    base: TaskRequest = task.request
    request = TaskRequest(base.resources, base.priority, base.appclass, base.constraints + tuple(avoid),
                          base.preferences, base.max_per_domain, base.spread, base.job, base.placement)
    view = state.view
    ctx = EvalContext(view, request, np.arange(len(view)))
    mask = np.ones(len(view), dtype=bool)
    for checker in default_checkers():
        if checker.applies(request):
            mask &= checker.check(ctx)
    if not mask.any():
        return None
    candidates = np.flatnonzero(mask)
    best = candidates[np.argmax(view.free[candidates, 0])]  # the first of the freest: deterministic
    return str(view.names[best])


def speculate(step: Step, config: SpeculationConfig, siblings: SiblingRuntimes | None = None,
              runtimes_of: Callable[[list[TaskRecord]], list[float]] | None = None) -> int:
    """Copy the stragglers the rule names, within the budgets; how many copies were started.
    ``siblings`` keeps the finished runtimes between ticks (the core's); ``runtimes_of`` replaces them."""
    state = step.state
    cell_left = config.per_cell - len(state.copies)
    if cell_left <= 0 or config.per_job <= 0:
        return 0
    now = step.clock.now()
    started = 0
    running_jobs = [j for j in state.jobs.values() if j.state.value == "running" and eligible(j)]
    siblings = siblings if siblings is not None else SiblingRuntimes()  # none kept: read them all now
    siblings.keep_only({j.id for j in running_jobs})
    for job in running_jobs:
        pending, running_now = state.job_live.get(job.id, (0, 0))
        if job.spec.tasks - pending - running_now < config.min_finished or not running_now:
            continue  # too few have ended to have finished enough, or none runs: spare the scan of its records
        runtimes = runtimes_of(state.tasks_of(job.id)) if runtimes_of is not None else siblings(state, job)
        if len(runtimes) < config.min_finished:
            continue
        tasks = state.tasks_of(job.id)
        running = [(t.name, running_elapsed(t, now)) for t in tasks
                   if t.state is R and t.copies == 0 and t.name not in state.copies and t.version == job.version]
        for straggler in stragglers(runtimes, running, config, state.copies_of(job.id), cell_left):
            task = state.tasks[straggler.task]
            machine = choose_machine(state, task, config.avoid)
            if machine is None:
                continue  # nowhere to put it now; the next tick asks again
            copy = task.copies + 1
            step.emit(CopyScheduled, task=task.name, copy=copy, machine=machine, generation=task.generation,
                      note=straggler.reason(display(task.name), config))
            step.start(copy_id(task.name, copy), machine, copy_launch(state, task.name))
            cell_left -= 1
            started += 1
    return started


def copy_launch(state: Any, task: str) -> dict[str, Any]:
    record: CopyRecord = state.copies[task]
    t = state.tasks[task]
    return launch_body(state.jobs[t.job], t, copy=record.copy)


def copy_report(step: Step, machine: str, status: dict[str, Any], full: bool) -> bool:
    """Handle an agent's status if it is about a copy (True), else leave it to reports (False)."""
    parsed = parse_copy_id(str(status.get("task_id", "")))
    if parsed is None:
        return False
    name, number = parsed
    state = step.state
    record = state.copies.get(name)
    agent_state = status.get("state")
    if record is None or record.copy != number or record.machine != machine:
        if full and agent_state not in ENDED:
            step.kill(copy_id(name, number), machine, "not assigned to this machine")
        return True
    if status.get("generation") != record.generation:
        return True
    task = state.tasks[name]
    if agent_state == "finished":
        exit_code = status.get("exit_code", 0)
        step.emit(CopyEnded, task=name, copy=number, via="won", machine=machine,
                  note=f"copy {number} finished first on {machine} (exit code {exit_code})")
        step.kill(name, task.machine, f"copy {number} of it finished first on {machine}")
        step.emit(TaskEnded, task=name, via="finish", machine=machine,
                  note=f"copy {number} finished first on {machine}: exit code {exit_code}")
    elif agent_state in ("failed", "killed"):
        why = status.get("last_error") or f"exit code {status.get('exit_code')}"
        step.emit(CopyEnded, task=name, copy=number, via="fail" if agent_state == "failed" else "cancel",
                  machine=machine, note=f"copy {number} {agent_state} on {machine}: {why}")
    return True


def first_copy_finished(step: Step, task: TaskRecord) -> None:
    """``task`` (copy 0) finished on its machine: its speculative copy, if any, lost."""
    record = step.state.copies.get(task.name)
    if record is not None:
        step.emit(CopyEnded, task=task.name, copy=record.copy, via="lost", machine=record.machine,
                  note=f"copy 0 finished first on {task.machine}")
        step.kill(record.id, record.machine, f"copy 0 of {task.name} finished first")


def kill_cancelled(step: Step) -> None:
    """Kill on their agents the copies dropped with their tasks (killed, failed over, evicted...)."""
    for record in step.state.cancelled:
        step.kill(record.id, record.machine, f"its task {record.task} stopped running")
    step.state.cancelled.clear()
