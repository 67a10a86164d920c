"""When reclaimed room shrinks (Borg §5.5): what the non-production work placed in it gives back.

Non-production tasks placed in reclaimed room (``TaskRecord.reclaimed``) run on
resources that running tasks asked for but were not expected to use. When the
reservations of the others rise, that room shrinks:

* memory is not compressible: while the machine's reservations are over its
  memory, reclaimed tasks are evicted, lowest priority first (the larger first
  inside a priority), the ones not needed after all spared, back to pending
  with the reason ``evicted: production task web.alice/3 needed its reserved
  memory`` (the task whose reservation rose). It happens only in a usage report
  where a reservation rose: after a master restart every reservation starts at
  its limit, which would otherwise evict all reclaimed work at once;
* CPU is compressible: the reclaimed tasks share the CPU the others'
  reservations leave, in proportion to their limits (each at most its limit,
  at least ``MIN_CPU_MILLI``); the agent caps them there (``ReclaimedCpu``
  effect, corral/agent/reclaimed.py).

:func:`memory_evictions` and :func:`cpu_allowances` are pure decisions on
:class:`Held` rows; :func:`reclaim` is the step a usage report runs after it
updated the reservations (reservation_book.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from corral.master.commands import ReclaimedCpu
from corral.master.events import TaskEnded
from corral.master.step import Step
from corral.model.priority import band_of
from corral.model.resources import CPU

MIN_CPU_MILLI = 10  # the least CPU a throttled task is left (cgroup quotas have a floor too)


@dataclass(frozen=True)
class Held:
    """What one running task holds on its machine, as the reclamation decisions see it."""

    task: str
    shown: str  # how users name it: web.alice/3
    priority: int
    reclaimed: bool
    limit_cpu: int
    reserved_cpu: int
    reserved_memory: int
    rose: bool = False  # its memory reservation rose in this usage report


def _needer(held: Sequence[Held]) -> Held | None:
    """The task whose rising reservation squeezed the room: not reclaimed before reclaimed, then
    the highest priority, then the largest reservation."""
    risen = [h for h in held if h.rose]
    if not risen:
        return None
    return min(risen, key=lambda h: (h.reclaimed, -h.priority, -h.reserved_memory, h.task))


def memory_evictions(capacity_memory: int, held: Sequence[Held]) -> list[tuple[str, str]]:
    """``[(task, reason)]``: the reclaimed tasks to evict so the reservations fit the machine's memory
    again; none unless they are over it and a reservation rose."""
    total = sum(h.reserved_memory for h in held)
    needer = _needer(held)
    if total <= capacity_memory or needer is None:
        return []
    chosen: list[Held] = []
    for victim in sorted((h for h in held if h.reclaimed), key=lambda h: (h.priority, -h.reserved_memory, h.task)):
        if total <= capacity_memory:
            break
        chosen.append(victim)
        total -= victim.reserved_memory
    for victim in sorted(chosen, key=lambda h: (-h.priority, h.reserved_memory, h.task)):
        if total + victim.reserved_memory <= capacity_memory:  # not needed after all
            chosen.remove(victim)
            total += victim.reserved_memory
    reason = f"evicted: {band_of(needer.priority).value} task {needer.shown} needed its reserved memory"
    return [(victim.task, reason) for victim in chosen]


def cpu_allowances(capacity_cpu: int, held: Sequence[Held]) -> dict[str, int]:
    """Per reclaimed task, the millicores it may use: its limit while the CPU the other tasks'
    reservations leave holds every reclaimed limit, else a share of it in proportion to its limit."""
    reclaimed = [h for h in held if h.reclaimed]
    if not reclaimed:
        return {}
    room = max(0, capacity_cpu - sum(h.reserved_cpu for h in held if not h.reclaimed))
    wanted = sum(h.limit_cpu for h in reclaimed)
    if wanted <= room:
        return {h.task: h.limit_cpu for h in reclaimed}
    return {h.task: max(MIN_CPU_MILLI, h.limit_cpu * room // wanted) for h in reclaimed}


def held_on(state: Any, book: Any, machine: str, rose: set[str]) -> list[Held]:
    """The :class:`Held` rows of the tasks the master has running on ``machine``."""
    view = state.view
    at = view.index.get(machine)
    out = []
    for name in (view.tasks[at] if at is not None else ()):
        task = state.tasks.get(name)
        if task is None:  # a speculative copy: placed against its limits, never in reclaimed room
            continue
        reserved = book.reservation_of(task)
        out.append(Held(name, f"{task.job}/{task.index}", task.request.priority, task.reclaimed,
                        int(task.request.vector[CPU]), int(reserved[0]), int(reserved[1]), name in rose))
    return out


def reclaim(step: Step, book: Any, machine: str, rose: set[str]) -> None:
    """Evict what the machine's memory no longer holds and tell its agent the reclaimed tasks' CPU."""
    state = step.state
    record = state.machines[machine]
    held = held_on(state, book, machine, rose)
    evicted = set()
    for task, reason in memory_evictions(record.capacity.memory, held):
        step.kill(task, machine, reason)
        step.emit(TaskEnded, task=task, via="evict", note=reason, machine=machine)
        state.tasks[task].reason, state.tasks[task].explanation = reason, None
        book.forget(task)
        evicted.add(task)
    allowed = cpu_allowances(record.capacity.cpu, [h for h in held if h.task not in evicted])
    if allowed or book.throttled.get(machine):
        # Sent again with every usage report while there is reclaimed work (an agent that restarted
        # forgot it); once more, empty, when the last reclaimed task left.
        if allowed:
            book.throttled[machine] = allowed
        else:
            book.throttled.pop(machine, None)
        step.effects.append(ReclaimedCpu(machine, record.address, allowed))
        step.reply = {**step.reply, "reclaimed_cpu": allowed}
    if evicted:
        step.reply = {**step.reply, "evicted": sorted(evicted)}


__all__ = ["Held", "MIN_CPU_MILLI", "cpu_allowances", "held_on", "memory_evictions", "reclaim"]
