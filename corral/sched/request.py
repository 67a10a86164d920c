"""What the scheduler is asked to place: tasks and their equivalence classes.

A :class:`TaskRequest` holds everything that decides where a task may go and
how machines score for it. It is hashable: tasks with equal requests form an
*equivalence class* (Borg §3.4) and are checked and scored once. The job's
name is part of the request only when the job's placement depends on where
its other tasks are (failure-domain limits or spreading).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from corral.model.constraints import Constraint, SoftConstraint
from corral.model.job import AppClass
from corral.model.resources import GPU_MILLI_WHOLE, Resources


@dataclass(frozen=True)
class TaskRequest:
    resources: Resources
    priority: int = 2
    appclass: AppClass = AppClass.BATCH
    constraints: tuple[Constraint, ...] = ()
    preferences: tuple[SoftConstraint, ...] = ()
    max_per_domain: tuple[tuple[str, int], ...] = ()
    spread: str | None = None
    job: str | None = None  # set only when domain limits or spreading apply
    placement: str | None = None  # the job's own water level (corral.model.placement); None: the cell's policy
    # Apollo's opportunistic task (beyond its user's quota): scheduled at priority 0 (after every regular
    # task, preempting nothing, in reclaimed room too) and the first victim of any preemption (preempt.py).
    opportunistic: bool = False

    def __post_init__(self) -> None:
        if (self.max_per_domain or self.spread) and self.job is None:
            raise ValueError("a request with failure-domain limits or spreading must name its job")

    def __hash__(self) -> int:
        # Requests are dictionary keys on the hot path (one per run of tasks); hash once.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.resources, self.priority, self.appclass, self.constraints, self.preferences,
                           self.max_per_domain, self.spread, self.job, self.placement, self.opportunistic))
            object.__setattr__(self, "_hash", cached)
        return cached

    @cached_property
    def vector(self) -> np.ndarray:
        return self.resources.vector()

    @property
    def gpu(self) -> int:
        return self.resources.gpu

    @property
    def gpu_milli(self) -> int:
        return self.resources.gpu_milli if self.resources.gpu else 0

    @property
    def is_gpu_share(self) -> bool:
        return self.resources.gpu == 1 and self.resources.gpu_milli < GPU_MILLI_WHOLE

    @property
    def domain_dependent(self) -> bool:
        return bool(self.max_per_domain or self.spread)

    def describe(self) -> str:
        return f"{self.resources.describe()} priority={self.priority}" + (" opportunistic" if self.opportunistic else "")


@dataclass(frozen=True)
class PendingTask:
    """One task waiting for a machine. ``id`` is unique in the cell."""

    id: str
    job: str
    user: str
    request: TaskRequest
    index: int = 0
    submitted: float = 0.0  # submission order inside a user's queue
    # How many of its job's pending tasks this pass must place together, or none of them (a gang,
    # corral/sched/gang.py); 0: the task is placed on its own.
    gang: int = 0


@dataclass(slots=True)
class PlacedTask:
    """A task that occupies resources on a machine (running, or placed in this plan)."""

    id: str
    job: str
    user: str
    request: TaskRequest
    gpus: tuple[int, ...] = field(default=())
    plan: object = None  # the scheduling pass that placed it, while that pass runs (never a victim of it)

    ports: tuple[int, ...] = ()  # the dynamic ports picked for it (its fixed ones are in the request)
    # Reclamation (Borg §5.5): placed in room that only reservations leave (it would not have fit
    # against limits), and its reservation over DIMS (None: its limit, until the master says less).
    reclaimed: bool = False
    reserved: np.ndarray | None = None

    @property
    def priority(self) -> int:
        return self.request.priority

    @property
    def reservation(self) -> np.ndarray:
        """What the master reserves for it over DIMS: its reservation, or its limit before one is known."""
        return self.request.vector if self.reserved is None else self.reserved

    @property
    def held_ports(self) -> tuple[int, ...]:
        return self.request.resources.ports + self.ports
