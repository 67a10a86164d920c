"""Allocs on the agent: one parent sandbox per alloc, its tasks' sandboxes inside it.

An alloc (Borg §2.4) is a reservation on this machine that tasks of one or
more jobs run in. Here it is a parent control group named ``alloc-<id>``
under the agent's root, with the alloc's limits; each task of the alloc gets
its own cgroup with its own limits *inside* it, so the kernel holds the sum
of the alloc's tasks to the alloc's limits (a task's own limit may be larger
and still the alloc's holds). The parent is created when the first task of
the alloc starts here, its limits rewritten when a later launch carries new
ones, and removed once its last task's sandbox is gone (the master keeps the
reservation itself; an empty cgroup holds nothing).

Under rlimit isolation there are no control groups: a task of an alloc runs
with its own limits only.
"""

from __future__ import annotations

import logging
import threading

from corral.agent import cgroups
from corral.agent.isolation import RLIMIT, Isolation, Sandbox, limits_of
from corral.agent.launch import AllocRef

log = logging.getLogger(__name__)


class AllocBoxes:
    """The parent sandboxes of the allocs that have tasks on this agent."""

    def __init__(self, isolation: Isolation):
        self.isolation = isolation
        self.boxes: dict[str, Sandbox] = {}
        self.members: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(alloc_id: str) -> str:
        return f"alloc-{alloc_id}"

    def enter(self, alloc: AllocRef | None, task_key: str) -> str:
        """The sandbox key for a task attempt ``task_key``: nested in its alloc's parent (made or
        updated here) when it has one and this agent has control groups, else ``task_key``."""
        if alloc is None or self.isolation.name == RLIMIT:
            return task_key
        limits = limits_of(alloc.resources.cpu, alloc.resources.memory)
        with self._lock:
            box = self.boxes.get(alloc.id)
            if box is None:
                box = self.boxes[alloc.id] = self.isolation.create(self.key(alloc.id), limits)
                self.members[alloc.id] = set()
            elif box.limits != limits:
                self.isolation.set_limits(box, limits)
            nested = f"{box.key}/{task_key}"
            self.members[alloc.id].add(nested)
        return nested

    def parent(self, box_key: str) -> Sandbox | None:
        """The alloc sandbox a task's sandbox ``box_key`` is nested in, if any."""
        head, slash, _ = box_key.partition("/")
        return self.boxes.get(head[len("alloc-"):]) if slash and head.startswith("alloc-") else None

    def hit_alloc_limit(self, box: Sandbox) -> bool:
        """Was a task OOM-killed at its alloc's limit rather than its own? Where the kill is counted
        differs (cgroup v1: the victim's group only; v2: every ancestor too), so the task's peak
        usage tells which limit it reached: the alloc's when it stayed well under its own."""
        parent = self.parent(box.key)
        if parent is None or self.isolation.oom_kills(box) + self.isolation.oom_kills(parent) == 0:
            return False
        own = box.limits.memory_bytes
        directory = box.dirs.get("memory", box.dirs.get("unified"))
        peak = None
        for name in ("memory.max_usage_in_bytes", "memory.peak"):  # v1, v2
            if directory is not None and peak is None:
                peak = cgroups.read_int(directory / name)
        return own <= 0 or peak is None or peak < own * 0.9

    def leave(self, box_key: str) -> None:
        """A task attempt's sandbox ``box_key`` is gone: remove its alloc's parent if it was the last."""
        head, slash, _ = box_key.partition("/")
        if not slash or not head.startswith("alloc-"):
            return
        alloc_id = head[len("alloc-"):]
        with self._lock:
            members = self.members.get(alloc_id)
            if members is None:
                return
            members.discard(box_key)
            if members:
                return
            box = self.boxes.pop(alloc_id)
            del self.members[alloc_id]
        if not self.isolation.remove(box):
            log.warning("alloc %s: could not remove its cgroup %s", alloc_id, box.key)
