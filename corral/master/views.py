"""What the API, the UI and a client show of jobs, tasks, machines and the cell.

Plain functions of the master's state (``CellState``) and its records, each
returning a response model of corral.master.responses; the caller holds the
master's lock. States are in the words of corral.master.status: a job is
pending, running, succeeded, failed or killed (with the ``reason`` it ended);
a task is one of ``TASK_WORDS`` with a ``detail`` line, its ``restarts`` and
``last_exit`` from its agent's last report.

Filters (``?state=``) accept these words and the aliases below; anything
else is a 400 naming ``state`` and the accepted words:

* jobs: pending, running, succeeded, failed, killed, and ``dead`` (any ended job);
* tasks: the task words, where ``pending``, ``running`` and ``dead`` are the
  lifecycle states (``running``: placed, whether starting, running or
  restarting; ``dead``: ended, however).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from corral.master.errors import AdmissionError
from corral.master.health import health, oom_count, oom_line
from corral.master.history import rfc3339
from corral.master.records import JobRecord, TaskRecord
from corral.master.rollout import rollout_view
from corral.master.responses import (Capacity, CellSummary, CopyView, EventView, ExitInfo, Free, JobDetail, JobEvents,
                                     JobSummary, LastTransition, MachineDetail, MachineView, RolloutView, TaskDetail,
                                     TaskView, TransitionView, WhyView)
from corral.master.status import TASK_WORDS, job_end_reason, task_detail, task_word
from corral.model.job import JOB_STATE_ALIASES, JobState, TaskState

WAITING = "waiting for the next scheduling round"
ENDED_WORDS = ("succeeded", "failed", "killed")
JOB_WORDS = tuple(s.value for s in JobState if s.value not in JOB_STATE_ALIASES) + tuple(JOB_STATE_ALIASES)
# The lifecycle states (pending, running, dead) after the task words; "pending" is in both and means the same.
TASK_FILTER_WORDS = TASK_WORDS + tuple(s.value for s in TaskState if s.value not in TASK_WORDS)
_LIFECYCLE = {s.value: s for s in TaskState}
_ALIAS_STATES = {alias: frozenset(states) for alias, states in JOB_STATE_ALIASES.items()}


# ---- tasks ----------------------------------------------------------------------------------------


def task_view(state: Any, task: TaskRecord, now: float) -> TaskView:
    """A task: where it runs (machine, agent address, ports), its state word and detail."""
    job = state.jobs[task.job]
    machine = state.machines.get(task.machine) if task.machine else None
    reason = None
    if task.state is TaskState.PENDING:
        reason = task.reason or WAITING
    elif task.history:
        reason = task.history[-1].note
    report = _report(task)
    return TaskView(
        name=task.name, job=task.job, user=job.user, index=task.index, state=task_word(task),
        detail=task_detail(task, now), restarts=int(report.get("restarts") or 0), last_exit=_last_exit(report),
        machine=task.machine, address=machine.address if machine else None,
        ports=list(job.spec.resources.fixed_ports + task.ports) if task.state is TaskState.RUNNING else [],
        gpus=list(task.gpus), generation=task.generation, version=task.version, reason=reason,
        health=health(job, task), oom_kills=oom_count(task), reclaimed=task.reclaimed,
        speculative_copy=copy_view(state, task),
        opportunistic=bool(task.opportunistic) and task.state is not TaskState.DEAD)


def copy_view(state: Any, task: TaskRecord) -> CopyView | None:
    record = state.copies.get(task.name)
    return None if record is None else CopyView(number=record.copy, machine=record.machine,
                                                started_at=record.started_at, reason=record.note)


def task_detail_view(state: Any, task: TaskRecord, now: float) -> TaskDetail:
    """A task and its transitions."""
    return TaskDetail(**dict(task_view(state, task, now)), history=[_transition(t) for t in task.history])


def why_view(task: TaskRecord, now: float, state: Any = None) -> WhyView:
    """Why a task waits: the scheduler's one sentence and its record; for a placed or ended task,
    what it does and how it last changed."""
    if task.state is TaskState.PENDING:
        summary, explanation = task.reason or WAITING, task.explanation
    else:
        last = task.history[-1] if task.history else None
        summary = (f"the task is {task.state.value}" + (f" on {task.machine}" if task.machine else "")
                   + (" in reclaimed room (other tasks' unused reservations)" if task.reclaimed else "")
                   + (" as an opportunistic task (beyond its user's quota: preempted first, upgraded "
                      "when quota frees)" if task.opportunistic and task.state is TaskState.RUNNING else "")
                   + (f" ({last.via}: {last.note})" if last and last.note else ""))
        explanation = None
    oom = oom_line(task)
    if oom:
        summary = f"{summary.rstrip('.')}; {oom}"
    copy = copy_view(state, task) if state is not None else None
    if copy is not None:
        summary = f"{summary.rstrip('.')}; its copy {copy.number} runs on {copy.machine} ({copy.reason})"
    opportunistic = bool(task.opportunistic) and task.state is not TaskState.DEAD
    if opportunistic and task.state is TaskState.PENDING:
        summary = (f"opportunistic (beyond its user's quota: it waits for idle room and preempts nothing): "
                   f"{summary}")
    return WhyView(task=task.name, state=task.state.value, word=task_word(task), detail=task_detail(task, now),
                   summary=summary, explanation=explanation, reclaimed=task.reclaimed, opportunistic=opportunistic)


def task_counts(tasks: Iterable[TaskRecord]) -> dict[str, int]:
    """How many tasks per state word, plus ``dead``: all ended ones (the lifecycle's word)."""
    counts = dict.fromkeys(TASK_WORDS, 0)
    for task in tasks:
        counts[task_word(task)] += 1
    counts["dead"] = sum(counts[w] for w in ENDED_WORDS)
    return counts


def task_filter(word: str | None) -> Callable[[TaskRecord], bool] | None:
    """The test a task passes under ``?state=word`` (None: no filter); 400 for an unknown word."""
    if word is None:
        return None
    if word in _LIFECYCLE:
        wanted = _LIFECYCLE[word]
        return lambda task: task.state is wanted
    if word in TASK_WORDS:
        return lambda task: task_word(task) == word
    raise _unknown_word(word, TASK_FILTER_WORDS)


def job_tasks(state: Any, job: JobRecord) -> list[TaskRecord]:
    """A job's tasks as its views show them: all live ones, and the ended ones its spec still counts
    (a scale-down's removed tasks drop out)."""
    return [t for t in state.tasks_of(job.id) if t.index < job.spec.tasks or t.state is not TaskState.DEAD]


# ---- jobs -----------------------------------------------------------------------------------------


def job_summary(state: Any, job: JobRecord) -> JobSummary:
    """A job in the list: its state (and, ended, its reason) and how many tasks are in each state."""
    return JobSummary(**_job_fields(state, job))


HIDDEN_ENV = "(hidden: only the job's owner and admins see env values)"


def redacted_spec(spec: dict[str, Any], secrets: bool) -> dict[str, Any]:
    """``spec`` as a caller sees it: with ``secrets`` as it is, else with the env values hidden
    (the names stay: they say what the job is configured by, the values may be passwords)."""
    if secrets or not isinstance(spec.get("env"), dict):
        return spec
    return {**spec, "env": {key: HIDDEN_ENV for key in spec["env"]}}


def job_detail(state: Any, job: JobRecord, now: float, secrets: bool = True) -> JobDetail:
    """A job with its spec and its tasks; ``secrets=False`` hides the spec's env values."""
    tasks = job_tasks(state, job)
    rollout = rollout_view(state, job)
    return JobDetail(**_job_fields(state, job, tasks), spec=redacted_spec(job.spec_dict, secrets),
                     task_list=[task_view(state, t, now) for t in tasks],
                     rollout=RolloutView(**rollout) if rollout else None)


def job_filter(word: str | None) -> Callable[[JobRecord], bool] | None:
    """The test a job passes under ``?state=word`` (None: no filter); 400 for an unknown word."""
    if word is None:
        return None
    if word in _ALIAS_STATES:
        states = _ALIAS_STATES[word]
        return lambda job: job.state in states
    if word in JOB_WORDS:
        wanted = JobState(word)
        return lambda job: job.state is wanted
    raise _unknown_word(word, JOB_WORDS)


def job_events(state: Any, job: JobRecord) -> JobEvents:
    """Every transition of a job and its tasks, in the order they happened (the job's first at a tie)."""
    events = [_event(job.id, "job", t) for t in job.history]
    for task in state.tasks_of(job.id):
        events += [_event(task.name, "task", t) for t in task.history]
    events.sort(key=lambda e: (e.seq, e.kind != "job", e.object))
    return JobEvents(job=job.id, events=events)


def _job_fields(state: Any, job: JobRecord, tasks: list[TaskRecord] | None = None) -> dict[str, Any]:
    last = job.history[-1] if job.history else None
    tasks = job_tasks(state, job) if tasks is None else tasks
    return {"job": job.id, "name": job.name, "user": job.user, "state": job.state.value,
            "reason": job_end_reason(job) if _ended(job) else None,
            "priority": job.spec.priority, "tasks": job.spec.tasks,
            "task_states": task_counts(tasks),
            "opportunistic": sum(1 for t in tasks if t.opportunistic and t.state is not TaskState.DEAD),
            "version": job.version, "submitted_at": job.submitted_at, "after": job.spec.after,
            "last": LastTransition(via=last.via, note=last.note) if last else None,
            "kind": "allocset" if job.is_allocset else "job", "alloc": job.spec.alloc}


def _ended(job: JobRecord) -> bool:
    return job.state.ended or any(job.state in states for states in _ALIAS_STATES.values())


# ---- machines and the cell ------------------------------------------------------------------------


def machine_view(state: Any, name: str, usage: Any = None) -> MachineView:
    """A machine: its record, what is free on it and how many tasks it holds (in the cell view);
    with ``usage`` (the core's ReservationBook) its limit, reservation and usage."""
    return MachineView(**_machine_fields(state, name, usage))


def machine_detail(state: Any, name: str, task_list: list[str], usage: Any = None) -> MachineDetail:
    """A machine and the tasks the master wants on it (``MasterCore.assignments``)."""
    return MachineDetail(**_machine_fields(state, name, usage), task_list=task_list)


def _machine_fields(state: Any, name: str, usage: Any = None) -> dict[str, Any]:
    record = state.machines.get(name)
    if record is None:
        raise AdmissionError(404, [("machine", f"no machine {name}")], "not_found")
    fields = record.to_dict()
    fields["capacity"] = Capacity(**fields["capacity"])
    at = state.view.index.get(name)
    if at is None:
        fields["free"], fields["tasks"] = None, 0
    else:
        free = state.view.free[at]
        fields["free"] = Free(cpu=int(free[0]), memory=int(free[1]), disk=int(free[2]), gpu_milli=int(free[3]))
        fields["tasks"] = len(state.view.tasks[at])
        if usage is not None:
            fields.update(usage.machine(state, name, list(state.view.tasks[at])))
    return fields


def cell_summary(state: Any, store: str, broken: str) -> CellSummary:
    """The cell at a glance: counts of machines, jobs and tasks (per state word)."""
    return CellSummary(cell=state.cell, seq=state.seq, machines=len(state.machines), jobs=len(state.jobs),
                       tasks=task_counts(state.tasks.values()), store=store, broken=broken)


# ---- helpers --------------------------------------------------------------------------------------


def _report(task: TaskRecord) -> dict[str, Any]:
    """The agent's last status of this placement of the task ({} if none: an older one says nothing
    about this one)."""
    agent = task.agent or {}
    return agent if agent.get("generation") == task.generation else {}


def _last_exit(report: dict[str, Any]) -> ExitInfo | None:
    code, error = report.get("exit_code"), (report.get("last_error") or "").strip()
    if code is None and not error:
        return None
    return ExitInfo(code=code, error=error)


def _transition(t: Any) -> TransitionView:
    return TransitionView(seq=t.seq, cmd=t.cmd, t=t.t, time=rfc3339(t.t), via=t.via, from_=t.old, to=t.new,
                          note=t.note)


def _event(obj: str, kind: str, t: Any) -> EventView:
    return EventView(object=obj, kind=kind, seq=t.seq, cmd=t.cmd, t=t.t, time=rfc3339(t.t), via=t.via, from_=t.old,
                     to=t.new, note=t.note)


def _unknown_word(word: str, accepted: Iterable[str]) -> AdmissionError:
    return AdmissionError(400, [("state", f"expected one of {', '.join(accepted)}, got {word!r}")])
