"""Quota bookkeeping of the cell state (a part of :class:`corral.master.state.CellState`), and the
applier of ``TaskUpgraded``.

Quota counts each live (pending or running) regular task of a live job at its job's limits:
``charged`` (job -> how many of its tasks are charged) and ``usage`` ((user, band) -> their sum).
Opportunistic tasks (corral/master/opportunistic.py) are never charged; ``opportunistic`` lists the
live ones oldest first (by the seq of the event that made them so, then index). ``quota_freed`` is
set whenever a charge goes down, so the core looks for upgrades only then (and at every Tick).
All derived from the tasks' records by ``CellState.apply`` and ``from_dict``, never logged on its own;
corral.master.invariants checks that it agrees with the tasks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corral.master import events as ev
from corral.master.lifecycle import TransitionError
from corral.master.records import charge
from corral.model.job import TaskState
from corral.sched.request import PlacedTask


class QuotaAccounts:
    """Mixed into CellState: what each user is charged per band, and the live opportunistic tasks."""

    usage: dict[tuple[str, Any], np.ndarray]
    charged: dict[str, int]
    opportunistic: dict[str, None]
    quota_freed: bool
    tasks: dict[str, Any]
    jobs: dict[str, Any]

    def _charge(self, job: Any, sign: int) -> None:
        """Add (+1) or take back (-1) the job's charged tasks at its spec's limits, in its band."""
        key = (job.user, job.band)
        self.usage[key] = self.usage_of(job.user, job.band) + sign * charge(job.spec, self.charged.get(job.id, 0))
        if sign < 0:
            self.quota_freed = True

    def _count(self, job: Any, delta: int) -> None:
        """``delta`` more (or fewer) charged tasks of ``job``."""
        key = (job.user, job.band)
        self.charged[job.id] = self.charged.get(job.id, 0) + delta
        self.usage[key] = self.usage_of(job.user, job.band) + charge(job.spec, delta)
        if delta < 0:
            self.quota_freed = True

    def _charge_new(self, task: Any, job: Any, charged: bool = True) -> None:
        """A task came into being: charged if regular (unless the caller charges a batch of them at
        once), listed (youngest) if opportunistic."""
        if task.opportunistic:
            self.opportunistic[task.name] = None
        elif charged:
            self._count(job, +1)

    def _uncharge(self, task: Any) -> None:
        """A task ended: a regular one no longer counts against its user's quota."""
        if task.opportunistic:
            self.opportunistic.pop(task.name, None)
        else:
            self._count(self.jobs[task.job], -1)

    def _kill_live(self, job: Any, event: Any) -> None:
        """Kill every live task of ``job`` (it was killed or failed), giving its charges back at once."""
        regular = 0
        for task in self.tasks_of(job.id):
            if task.state is not TaskState.DEAD:
                regular += not task.opportunistic
                self.opportunistic.pop(task.name, None)
                self._transition(task, "kill", event, event.note, uncharge=False)
        self._count(job, -regular)

    def _task_upgraded(self, event: ev.TaskUpgraded) -> None:
        """An opportunistic task becomes regular where it is: charged from now on, placed with its job's
        request (its priority, a victim like any other); a running one is not restarted."""
        task = self.tasks[event.task]
        job = self.jobs[task.job]
        if not task.opportunistic or task.state is TaskState.DEAD:
            raise TransitionError(f"task {task.name} is {task.state.value} and opportunistic={task.opportunistic}: "
                                  f"only a live opportunistic task is upgraded")
        self._transition(task, "upgrade", event, event.note)
        self.opportunistic.pop(task.name, None)
        task.opportunistic = 0
        self._count(job, +1)
        if task.state is TaskState.RUNNING:
            placed = self.view.remove(task.name)
            request = job.request_of_task(task, task.version)
            self.view.place(PlacedTask(task.name, job.id, job.user, request, placed.gpus, ports=placed.ports,
                                       reclaimed=placed.reclaimed, reserved=placed.reserved),
                            self.view.index[task.machine])
            task.request = request
