"""Opportunistic tasks (Apollo): a job's tasks beyond its user's quota, run in idle room, upgraded in place.

A job whose spec says ``opportunistic: true`` (any of its tasks) or ``opportunistic: N`` (at most N)
is not refused when it does not fit its user's quota in its band: as many of its tasks as fit are
*regular* (charged, as every task is), the rest, its last ones, *opportunistic*:

* charged nothing: quota counts each live regular task of a live job (``CellState.charged``);
* scheduled at priority 0 with ``TaskRequest.opportunistic`` (``JobRecord.request_of_task``): after
  every regular task, preempting nothing, in reclaimed room too (non-production work), and the
  first victim of any preemption (corral.sched.preempt);
* upgraded to regular where they are when quota frees (a regular task of the user ended, a job was
  killed or shrunk, a larger quota loaded): one ``TaskUpgraded`` event each, oldest first (by the
  event that made them opportunistic, then index), per user and band, stopping at the first that
  does not fit (an older task is never passed over for a younger one). A running task keeps its
  machine, its process and its generation; its agent is sent its launch again, the same generation
  without ``opportunistic`` (:func:`tell_agents`), which it takes as an upgrade in place: no restart,
  a regular CPU weight and eviction order (corral/agent/opportunistic.py). A full report that still
  shows it ``opportunistic`` (the launch was lost, or the agent restarted since) gets it sent again
  (corral.master.reports).

Pure decisions over the state: :func:`opportunistic_count` is admission's, :func:`upgrade` runs at
the end of every command that may have freed quota (``CellState.quota_freed``) and at every ``Tick``
(a quota raised by a restart with a new quota file). Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corral.master import allocs, speculation
from corral.master.copies import copy_id
from corral.master.errors import AdmissionError
from corral.master.events import TaskUpgraded
from corral.master.quota import Quotas
from corral.master.records import charge
from corral.master.step import Step
from corral.model.job import TaskState
from corral.model.priority import band_of


def room_for(quotas: Quotas, spec: Any, used: np.ndarray, base: int, extra: int) -> int:
    """How many of ``extra`` more regular tasks of ``spec`` fit its user's quota beside ``base`` of them
    and ``used``: 0..extra, or -1 if ``base`` alone does not fit."""
    if spec.priority == 0:
        return extra
    limit = quotas.limit(spec.user, band_of(spec.priority))
    if limit is None:
        return extra
    per = charge(spec, 1)
    left = limit - used - per * base
    if (left < 0).any():
        return -1
    need = per > 0
    if not need.any():
        return extra
    return int(min(extra, (left[need] // per[need]).min()))


def opportunistic_count(quotas: Quotas, spec: Any, used: np.ndarray, base: int = 0, extra: int | None = None,
                        already: int = 0) -> int:
    """How many of ``extra`` new tasks of ``spec`` (default: all its tasks) run opportunistically beside
    ``base`` regular and ``already`` opportunistic tasks of the job: those that do not fit the quota.
    Raises the quota's :class:`AdmissionError` (422, naming ``quota.<band>.<resource>``, and
    ``opportunistic`` when the spec allows too few) if more would have to than the spec allows."""
    extra = spec.tasks if extra is None else extra
    fit = room_for(quotas, spec, used, base, extra)
    over = extra - fit if fit >= 0 else extra
    allowed = max(0, spec.opportunistic_cap - already)
    if fit >= 0 and over <= allowed:
        return over
    try:
        quotas.check(spec.user, spec.priority, used, charge(spec, base + extra))
    except AdmissionError as e:
        if spec.opportunistic_cap:
            why = (f"its {base} regular tasks alone are over the quota" if fit < 0 else
                   f"{over} of its tasks would run opportunistically, at most {allowed} may")
            e.errors.append(("opportunistic", why))
            e.args = ("; ".join(f"{f}: {m}" for f, m in e.errors),)
        raise
    raise AssertionError("the quota refused nothing the count said was over it")  # pragma: no cover


def upgrade(step: Step, quotas: Quotas) -> list[str]:
    """Upgrade the oldest opportunistic tasks that fit their users' quotas now (``TaskUpgraded`` each);
    the names upgraded. Clears ``state.quota_freed``."""
    state = step.state
    state.quota_freed = False
    if not state.opportunistic:
        return []
    blocked: set[tuple[str, Any]] = set()
    upgraded = []
    for name in list(state.opportunistic):
        task = state.tasks[name]
        job = state.jobs[task.job]
        key = (job.user, job.band)
        if key in blocked or task.state is TaskState.DEAD:
            continue
        if room_for(quotas, job.spec, state.usage_of(*key), 0, 1) < 1:
            blocked.add(key)  # oldest first: a younger task of this user and band waits behind it
            continue
        step.emit(TaskUpgraded, task=name, note="its user's quota has room: now a regular task, where it runs")
        tell_agents(step, task)
        upgraded.append(name)
    state.quota_freed = False
    return upgraded


def tell_agents(step: Step, task: Any) -> None:
    """Send an upgraded running task's launch (and its speculative copy's) again: the same generation,
    no longer ``opportunistic``; its agent upgrades it in place."""
    state = step.state
    if task.state is not TaskState.RUNNING or task.machine is None:
        return  # a pending one is launched regular when it is placed
    step.upgrade(task.name, task.machine, allocs.launch(state, task))
    copy = state.copies.get(task.name)
    if copy is not None:
        step.upgrade(copy_id(task.name, copy.copy), copy.machine, speculation.copy_launch(state, task.name))


def counts(state: Any, jid: str) -> tuple[int, int]:
    """A job's live (opportunistic, running opportunistic) tasks."""
    live = [state.tasks[n] for n in state.job_tasks.get(jid, ()) if state.tasks[n].opportunistic
            and state.tasks[n].state is not TaskState.DEAD]
    return len(live), sum(1 for t in live if t.state is TaskState.RUNNING)
