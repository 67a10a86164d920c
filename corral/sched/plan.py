"""The scheduler's output: placements, preemptions, and why the rest wait."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from corral.sched.explain import Explanation


class Placement(NamedTuple):  # a tuple: cheap to make, and there is one per placed task
    task_id: str
    machine: str
    gpus: tuple[int, ...]
    score: float
    evaluated: int  # machines examined to choose it (relaxed randomization keeps this small)
    ports: tuple[int, ...] = ()  # dynamic ports picked for it on the machine
    reclaimed: bool = False  # placed in room only reservations leave (it would not fit against limits)


@dataclass(frozen=True, slots=True)
class Preemption:
    """``victim`` is evicted from ``machine`` to make room for ``by``; it goes back to pending."""

    victim: str
    machine: str
    by: str
    reason: str


@dataclass
class Plan:
    placements: list[Placement] = field(default_factory=list)
    preemptions: list[Preemption] = field(default_factory=list)
    unplaced: dict[str, Explanation] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)

    def placed_on(self) -> dict[str, str]:
        return {p.task_id: p.machine for p in self.placements}
