"""The agent's machine queue (Apollo): tasks that wait here for room, started the moment it frees.

The master sends a launch marked ``queued`` when a batch task fits nowhere
now (corral/master/queue_placement.py). The supervisor keeps it as a
``queued`` task and, after every event, asks :func:`ready` which queued
tasks to start: in the order they came, each once its limits (cpu, memory)
fit beside the limits of the tasks that hold room here (starting, running,
or in back-off waiting to restart). The queue is strictly first come, first
served: a big task at the head is not overtaken by smaller ones behind it
(it would starve). No scheduling round, no word from the master, comes in
between: the start is reported like any other, and the master cancels the
task's other copies (a ``DELETE``, as for any task).

Pure: the supervisor hands in its records and the machine's capacity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DIMS = ("cpu", "memory")  # what a launch's limits ask of the machine (disk and GPUs are not queued)


def held(records: Iterable[Any], holding: frozenset[str]) -> dict[str, int]:
    """What the tasks in states ``holding`` take of the machine, by their limits."""
    out = dict.fromkeys(DIMS, 0)
    for rec in records:
        if rec.state in holding:
            for dim in DIMS:
                out[dim] += getattr(rec.launch.resources, dim)
    return out


def ready(queue: Iterable[str], records: Mapping[str, Any], capacity: Mapping[str, int] | None,
          holding: frozenset[str]) -> list[str]:
    """The queued tasks to start now, in queue order (``capacity`` None: the machine's size is unknown,
    so a queued task starts only once nothing else holds room)."""
    use = held(records.values(), holding)
    out = []
    for task_id in queue:
        want = records[task_id].launch.resources
        if capacity is None:
            if any(use.values()) or out:
                break
        elif any(use[d] + getattr(want, d) > capacity.get(d, 0) for d in DIMS if getattr(want, d)):
            if any(use.values()) or out:
                break  # a task too big for even the empty machine starts alone rather than never
        out.append(task_id)
        for d in DIMS:
            use[d] += getattr(want, d)
    return out
