"""The alloc set spec (``kind: allocset``): a group of allocs, reserved resource envelopes on machines.

An alloc (Borg §2.4) is a reservation of resources on one machine into which
tasks of one or more jobs can go; an alloc set is like a job: ``count`` allocs
of ``resources`` each, with a user, a priority and the placement rules of a
job (constraints, soft constraints, ``max_per_domain``, ``spread``). It runs
nothing itself: the master places its allocs and they hold their resources
whether or not tasks run in them. A job goes into a set with ``alloc: NAME``
(corral.model.spec.JobSpec).

The model answers the job-only fields (``tasks``, ``command``, ``after``, ...)
as an alloc set has them (``count``; none), so the master's records read a
set like a job.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, Strict, field_validator, model_validator

from corral.model.job import AppClass
from corral.model.priority import MAX_PRIORITY, MIN_PRIORITY
from corral.model.spec import ALLOCSET, NAME, JobSpec, ResourcesSpec, SoftConstraintSpec, _Strict


class AllocSetSpec(_Strict):
    """``count`` allocs of ``resources`` each (cpu, memory, disk: no GPUs or ports yet)."""

    kind: Literal["allocset"]
    name: str = Field(json_schema_extra={"pattern": NAME.pattern, "minLength": 1, "maxLength": 64})
    user: str = Field(json_schema_extra={"pattern": NAME.pattern, "minLength": 1, "maxLength": 64})
    priority: int = Field(2, ge=MIN_PRIORITY, le=MAX_PRIORITY, strict=True)
    appclass: AppClass = AppClass.BATCH
    count: int = Field(1, ge=1, le=100_000, strict=True, description="how many allocs")
    resources: ResourcesSpec = Field(description="each alloc's: what its tasks share on its machine")
    constraints: tuple[str, ...] = ()
    soft_constraints: tuple[SoftConstraintSpec, ...] = ()
    max_per_domain: dict[str, Annotated[int, Strict()]] = Field(default_factory=dict)
    spread: str | None = None

    # the job spec's own rules for the fields they share
    _name = field_validator("name", "user")(classmethod(lambda cls, v: JobSpec._name(v)))
    _constraints = field_validator("constraints")(classmethod(lambda cls, v: JobSpec._constraints(v)))
    _soft = field_validator("soft_constraints")(classmethod(lambda cls, v: JobSpec._soft(v)))
    _domains = field_validator("max_per_domain")(classmethod(lambda cls, v: JobSpec._domains(v)))
    _spread = field_validator("spread")(classmethod(lambda cls, v: JobSpec._spread(v)))
    _owner = model_validator(mode="before")(classmethod(lambda cls, data: JobSpec._owner_alias(data)))

    @field_validator("resources")
    @classmethod
    def _envelope(cls, value: ResourcesSpec) -> ResourcesSpec:
        if value.gpu:
            raise ValueError("an alloc holds cpu, memory and disk; GPUs in allocs are not supported yet")
        if value.ports:
            raise ValueError("an alloc holds cpu, memory and disk; ports in allocs are not supported yet")
        return value

    # what the master's records read of any spec: an alloc set is a job of `count` allocs that run nothing
    @property
    def tasks(self) -> int:
        return self.count

    after: ClassVar[None] = None
    command: ClassVar[None] = None
    args: ClassVar[tuple[str, ...]] = ()
    workdir: ClassVar[None] = None
    restart: ClassVar[None] = None
    alloc: ClassVar[None] = None
    alloc_placement: ClassVar[str] = "index"
    # a set's allocs are placed one by one, run no process to check and roll without a health gate
    gang: ClassVar[bool] = False
    min_tasks: ClassVar[None] = None
    placement: ClassVar[None] = None
    health_check: ClassVar[None] = None
    update: ClassVar[None] = None
    opportunistic: ClassVar[bool] = False  # an alloc set is admitted within quota or not at all
    opportunistic_cap: ClassVar[int] = 0

    @property
    def gang_size(self) -> int:
        return 0

    @property
    def env(self) -> dict[str, str]:
        return {}

    def hard_constraints(self):
        return JobSpec.hard_constraints(self)  # type: ignore[arg-type]

    def preferences(self):
        return JobSpec.preferences(self)  # type: ignore[arg-type]


def is_allocset(spec: Any) -> bool:
    return isinstance(spec, AllocSetSpec)


__all__ = ["ALLOCSET", "AllocSetSpec", "is_allocset"]
