"""Alloc-level bookkeeping of the cell state (a part of :class:`corral.master.state.CellState`).

An alloc is a "task" of an alloc set; the tasks placed in it are listed here with what each takes of
it (its own limits), derived from the tasks' records by ``CellState.apply`` and ``from_dict``
(never logged on its own). corral.master.invariants checks that it agrees with the tasks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corral.model.resources import DIMS


class AllocAccounts:
    """Mixed into CellState: ``alloc_members`` (alloc -> {task: what it takes}) and its reads."""

    alloc_members: dict[str, dict[str, np.ndarray]]
    tasks: dict[str, Any]
    jobs: dict[str, Any]

    def is_alloc(self, name: str) -> bool:
        """Is ``name`` an alloc (a "task" of an alloc set: a reservation no agent runs)?"""
        task = self.tasks.get(name)
        return task is not None and self.jobs[task.job].is_allocset

    def alloc_used(self, alloc: str) -> np.ndarray:
        """What the tasks placed in ``alloc`` take of it (cpu, memory, disk, gpu)."""
        members = self.alloc_members.get(alloc)
        return sum(members.values(), np.zeros(len(DIMS), dtype=np.int64)) if members else np.zeros(len(DIMS), dtype=np.int64)

    def _leave_alloc(self, task: Any) -> None:
        if task.alloc is not None:
            members = self.alloc_members.get(task.alloc)
            if members is not None:
                members.pop(task.name, None)
                if not members:
                    del self.alloc_members[task.alloc]
            task.alloc = None

    def _enter_alloc(self, task: Any, alloc: str) -> None:
        task.alloc = alloc
        self.alloc_members.setdefault(alloc, {})[task.name] = self.jobs[task.job].need_of(task.version)
