"""Placement inside allocs: the checker and scorer for tasks of a job that targets an alloc set.

A job with ``alloc: SET`` does not ask machines for room: each of its tasks
goes into one alloc of the set (a reservation some machine already holds)
and is checked against what is left of that alloc, not of the machine:

* ``index`` placement: task ``i`` goes into alloc ``i`` or waits for it;
* ``any`` placement: any alloc of the set with room; the alloc on the
  machine the task last ran on first (an update that fits never leaves its
  machine), then best fit (the alloc left fullest, so room stays whole for
  bigger tasks), then the lowest index.

Reasons are one sentence a user can act on:
``alloc web-allocs/3 has 200m cpu left, task asks 500m``.

Pure: the master hands in :class:`AllocRoom` records built from its state
and gets choices back; nothing here reads or writes the cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from corral.model.resources import format_bytes, format_cpu

DIM_NAMES = ("cpu", "memory", "disk", "gpu")
_SHOW = (format_cpu, format_bytes, format_bytes, lambda milli: f"{milli / 1000:g}")


@dataclass
class AllocRoom:
    """One alloc as placement sees it: where it is and what of it is still free."""

    alloc: str  # its id (the alloc's task name in the master's state)
    label: str  # how a user names it: <set>/<index>
    index: int
    machine: str | None  # None: the alloc itself is not placed (yet)
    capacity: np.ndarray  # (cpu, memory, disk, gpu milli), as Resources.vector()
    used: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.int64))
    waiting: str = ""  # the alloc's own pending reason while it is not placed

    @property
    def left(self) -> np.ndarray:
        return self.capacity - self.used


def check_room(room: AllocRoom, need: np.ndarray) -> str | None:
    """Why a task asking ``need`` does not fit in ``room`` now, or None if it does."""
    if room.machine is None:
        return f"alloc {room.label} is not placed yet" + (f" ({room.waiting})" if room.waiting else "")
    left = room.left
    for d, name in enumerate(DIM_NAMES):
        if need[d] > left[d]:
            show = _SHOW[d]
            return f"alloc {room.label} has {show(max(int(left[d]), 0))} {name} left, task asks {show(int(need[d]))}"
    return None


def _fullness(room: AllocRoom, need: np.ndarray) -> float:
    """How little of ``room`` stays free once ``need`` is in it (higher is a tighter fit)."""
    after = (room.left - need) / np.maximum(room.capacity, 1)
    return -float(after[room.capacity > 0].sum())


@dataclass(frozen=True)
class AllocChoice:
    room: AllocRoom | None
    reason: str = ""  # why none, when room is None


def choose(rooms: list[AllocRoom], need: np.ndarray, index: int, placement: str = "index",
           prefer_machine: str | None = None, set_name: str = "") -> AllocChoice:
    """The alloc of ``rooms`` (one set's allocs, by index) that a task ``index`` asking ``need`` goes
    into, or why none can take it now. Does not change ``rooms`` (see :func:`take`)."""
    if placement == "index":
        if index >= len(rooms):
            return AllocChoice(None, f"alloc set {set_name} has {len(rooms)} allocs, none for task {index}")
        why = check_room(rooms[index], need)
        return AllocChoice(None if why else rooms[index], why or "")
    reasons = [(r, check_room(r, need)) for r in rooms]
    fitting = [r for r, why in reasons if why is None]
    if not fitting:
        if not rooms:
            return AllocChoice(None, f"alloc set {set_name} has no allocs")
        first = next(why for _, why in reasons)
        more = f" (and {len(rooms) - 1} more allocs without room)" if len(rooms) > 1 else ""
        return AllocChoice(None, f"0/{len(rooms)} allocs of {set_name} have room: {first}{more}")
    best = max(fitting, key=lambda r: (r.machine == prefer_machine, _fullness(r, need), -r.index))
    return AllocChoice(best)


def take(room: AllocRoom, need: np.ndarray) -> None:
    """Book ``need`` in ``room`` (a task was placed in it this round)."""
    room.used = room.used + need
