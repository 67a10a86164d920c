"""The declarative job spec (YAML or JSON), validated with pydantic.

A bad spec raises :class:`SpecError`, whose message names each bad field and
what was expected, e.g. ``resources.memory: expected a byte quantity like
512Mi or 2Gi, got '12 parsecs'``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, ValidationInfo, field_validator, model_validator

from corral.model.constraints import Constraint, ConstraintError, SoftConstraint
from corral.model.health import HealthCheckSpec, UpdateSpec
from corral.model.job import AppClass
from corral.model.machine import FAILURE_DOMAINS
from corral.model.placement import canonical_placement
from corral.model.ports import check_named
from corral.model.priority import MAX_PRIORITY, MIN_PRIORITY, Band, band_floor, band_of
from corral.model.process import check_args, check_env, check_text
from corral.model.quantity import GPU_MILLI_WHOLE, MAX_GPUS, parse_bytes, parse_cpu, parse_gpu_count, quantity_validator
from corral.model.resources import Resources, check_port_range
from corral.model.validation import field_errors

NAME = re.compile(r"^[a-z0-9]([a-z0-9_\-]{0,62}[a-z0-9])?$")  # job and user names
NAME_RULE = "1-64 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit"
EDITOR_KEYS = frozenset({"$schema", "$id"})
JOB, ALLOCSET = "job", "allocset"  # the kinds of spec (corral.model.allocset: alloc sets)
ALLOC_PLACEMENTS = ("index", "any")
PRODUCTION_PRIORITY = band_floor(Band.PRODUCTION)


class FieldErrors(ValueError):
    """Input that does not validate. ``errors`` is a list of ``(field, message)``."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))


class SpecError(FieldErrors):
    """A job spec that does not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourcesSpec(_Strict):
    cpu: int = Field(description="millicores; the spec accepts cores (1.5) or millicores (500m)")
    memory: int = Field(description="bytes; the spec accepts 512Mi, 2Gi, ...")
    disk: int = 0
    gpu: int = Field(0, ge=0, le=MAX_GPUS)
    gpu_milli: int = Field(GPU_MILLI_WHOLE, ge=1, le=GPU_MILLI_WHOLE)
    gpu_model: tuple[str, ...] = ()
    # A list of fixed ports, or named ports {http: 0, admin: 8081} where 0 is "any free" (model/ports.py).
    ports: tuple[Annotated[int, Strict()], ...] | dict[str, Annotated[int, Strict()]] = ()  # false is not port 0

    # Quantities are read by corral.model.quantity (a number of cpu is cores); pydantic adds the
    # field to the message.
    _cpu = quantity_validator("cpu", parse=parse_cpu)
    _bytes = quantity_validator("memory", "disk", parse=parse_bytes)
    _gpus = quantity_validator("gpu", parse=parse_gpu_count)

    @field_validator("gpu_model", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(v for v in value.split("|") if v)
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[int, ...] | dict[str, int]) -> tuple[int, ...] | dict[str, int]:
        if isinstance(value, dict):
            return check_named(value)
        check_port_range(value)
        if len(set(value)) != len(value):
            raise ValueError("expected distinct ports")
        return value

    @model_validator(mode="after")
    def _share(self) -> "ResourcesSpec":
        if self.gpu_milli < GPU_MILLI_WHOLE and self.gpu != 1:
            raise ValueError("a fractional gpu_milli (< 1000) needs gpu: 1")
        return self

    def to_resources(self) -> Resources:
        return Resources(
            cpu=self.cpu,
            memory=self.memory,
            disk=self.disk,
            gpu=self.gpu,
            gpu_milli=self.gpu_milli,
            gpu_models=self.gpu_model,
            ports=self.fixed_ports,
            dynamic_ports=sum(1 for p in self.named_ports.values() if p == 0),
        )

    @property
    def named_ports(self) -> dict[str, int]:
        return self.ports if isinstance(self.ports, dict) else {}

    @property
    def fixed_ports(self) -> tuple[int, ...]:
        if isinstance(self.ports, dict):
            return tuple(p for p in self.ports.values() if p)
        return self.ports


class SoftConstraintSpec(_Strict):
    constraint: str
    weight: float = Field(1.0, gt=0)


class RestartSpec(_Strict):
    """How the agent restarts a failed task: exponential backoff, giving up after ``max_failures``
    failures (then the master tries another machine); a run of ``reset_after_s`` starts the
    count (and the backoff) afresh, as Kubernetes does: a service that crashes once a week is
    not given up on."""

    max_failures: int = Field(5, ge=0, le=1_000_000, strict=True)
    backoff_s: float = Field(1.0, ge=0, le=86400, strict=True)
    backoff_max_s: float = Field(60.0, ge=0, le=86400, strict=True)
    reset_after_s: float = Field(600.0, gt=0, le=10 * 86400, strict=True)

    def delay(self, failures: int) -> float:
        """Seconds to wait before the restart that follows the ``failures``-th failure (1-based)."""
        exponent = max(0, failures - 1)
        if exponent > 60:
            return self.backoff_max_s
        return min(self.backoff_s * (2**exponent), self.backoff_max_s)


class DisruptionBudgetSpec(_Strict):
    """How many of a job's tasks the rebalancer may disrupt at once (Kubernetes' PodDisruptionBudget):
    ``max_moving`` tasks moving, and/or ``max_unavailable_pct`` % of its tasks unavailable (its
    pending tasks and those stopped before their new copy starts); where both are given both hold."""

    # the schema says what _one checks: at least one of the two, as a number
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"anyOf": [
        {"required": ["max_moving"], "properties": {"max_moving": {"type": "integer"}}},
        {"required": ["max_unavailable_pct"], "properties": {"max_unavailable_pct": {"type": "number"}}}]})

    max_moving: int | None = Field(None, ge=0, le=100_000, strict=True,
                                   description="at most this many of the job's tasks moving at once")
    max_unavailable_pct: float | None = Field(None, ge=0, le=100, strict=True,
                                              description="at most this % of the job's tasks unavailable at once")

    @model_validator(mode="after")
    def _one(self) -> "DisruptionBudgetSpec":
        if self.max_moving is None and self.max_unavailable_pct is None:
            raise ValueError("expected max_moving or max_unavailable_pct (or both)")
        return self


class JobSpec(_Strict):
    """One job: ``tasks`` identical tasks with ``resources`` each."""

    kind: Literal["job"] = Field("job", description="job (the default) or allocset (corral.model.allocset)")
    # the pattern is documented in the schema; the validator below checks it, in corral's words
    name: str = Field(json_schema_extra={"pattern": NAME.pattern, "minLength": 1, "maxLength": 64})
    user: str = Field(json_schema_extra={"pattern": NAME.pattern, "minLength": 1, "maxLength": 64})
    # strict: a string "5" or a boolean true is a mistake to name, not a number to guess
    priority: int = Field(2, ge=MIN_PRIORITY, le=MAX_PRIORITY, strict=True)
    appclass: AppClass = AppClass.BATCH
    tasks: int = Field(1, ge=1, le=100_000, strict=True)
    # Gangs: the tasks placed all together or not at all (gang: true), or at least min_tasks of them
    # together, the rest one by one once the gang runs (corral/sched/gang.py).
    gang: bool = Field(False, strict=True, description="place all the job's tasks together or none of them")
    min_tasks: int | None = Field(None, ge=1, le=100_000, strict=True, description=(
        "place at least this many of the job's tasks together (a gang), the rest one by one once it runs"))
    scheduler: str | None = Field(None, json_schema_extra={"pattern": NAME.pattern, "minLength": 1, "maxLength": 64},
                                  description=(
        "the scheduler profile that places this job (the cell configuration's schedulers); default: the "
        "profile that claims its band or appclass, else the default profile"))
    # The rebalancer (corral/sched/rebalance): whether its tasks may be moved, within what budget.
    movable: bool | None = Field(None, strict=True, description=(
        "may the rebalancer move the job's tasks; default: true for batch and best-effort priorities "
        "with appclass batch, false for production, monitoring and latency-sensitive (service) jobs"))
    disruption_budget: DisruptionBudgetSpec | None = Field(None, description=(
        "how many of the job's tasks the rebalancer may disrupt at once; default: max_moving 1"))
    resources: ResourcesSpec
    constraints: tuple[str, ...] = ()
    soft_constraints: tuple[SoftConstraintSpec, ...] = ()
    max_per_domain: dict[str, Annotated[int, Strict()]] = Field(default_factory=dict)
    spread: str | None = None
    placement: str | None = Field(None, description="the job's placement water level: stability-first (spread "
                                  "over machines) or utilisation-first (pack; also utilization-first); "
                                  "default: the cell's policy")
    after: str | None = Field(None, description="start only after this job (same user) finished")
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None
    restart: RestartSpec | None = Field(None, description="the agent's restart policy; default: the agent's")
    health_check: HealthCheckSpec | None = Field(None, description="how the agent checks a task's health "
                                                                   "(corral.model.health); default: none")
    update: UpdateSpec | None = Field(None, description="how a rolling update treats failing new tasks")
    alloc: str | None = Field(None, description="run inside the allocs of this alloc set (same user)")
    alloc_placement: Literal["index", "any"] = Field(
        "index", description="index: task i in alloc i; any: in any alloc of the set with room")
    speculation: bool = Field(True, strict=True, description=(
        "a straggling batch task may get a second copy on another machine; false: never"))
    # Apollo's runtime hint (corral.sched.estimates): the prior of the job's runtime until its own tasks
    # have finished often enough; a finite number of seconds, never a string or a bool.
    expected_runtime: float | None = Field(None, gt=0, strict=True, allow_inf_nan=False, description=(
        "expected seconds a task of the job runs (a number > 0); the runtime estimate's prior, used in "
        "expected-wait and completion-time estimates until the job's own tasks have finished"))
    # Apollo's opportunistic tasks: beyond the user's quota, in idle room, first to be preempted, upgraded
    # to regular in place when quota frees (corral/master/opportunistic.py). Last, so its validator sees
    # every other field.
    opportunistic: bool | Annotated[int, Field(ge=0, le=100_000)] = Field(
        False, description="run the tasks beyond the user's quota as opportunistic tasks: true (all of them) "
                           "or at most this many; default false (the job is refused over quota)")

    # what the agent will run: the agent's own rules (corral.model.process), checked at admission
    _env = field_validator("env")(classmethod(lambda cls, value: check_env(value)))
    _args = field_validator("args")(classmethod(lambda cls, value: check_args(value)))
    _command = field_validator("command")(classmethod(lambda cls, value: check_text(value, "command")))
    _workdir = field_validator("workdir")(classmethod(lambda cls, value: check_text(value, "working directory")))

    @field_validator("name", "user", "alloc", "scheduler")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not NAME.match(value):
            raise ValueError(f"expected {NAME_RULE}")
        return value

    @field_validator("min_tasks")
    @classmethod
    def _min_tasks(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        if info.data.get("gang"):
            raise ValueError("expected gang: true (all tasks together) or min_tasks, not both (got both)")
        tasks = info.data.get("tasks")
        if isinstance(tasks, int) and value > tasks:
            raise ValueError(f"expected at most tasks ({tasks}), got {value}")
        return value

    @field_validator("opportunistic", mode="before")
    @classmethod
    def _opportunistic_type(cls, value: Any) -> Any:
        # strict and in one sentence: true, false or a count (not "3", not 1.5)
        if isinstance(value, bool) or isinstance(value, int) and 0 <= value <= 100_000:
            return value
        raise ValueError("expected true, false or a number of tasks (0-100000)")

    @field_validator("opportunistic")
    @classmethod
    def _opportunistic(cls, value: bool | int, info: ValidationInfo) -> bool | int:
        if value is False or value is not True and value == 0:
            return value
        priority = info.data.get("priority")
        if isinstance(priority, int) and priority >= PRODUCTION_PRIORITY:
            raise ValueError(f"expected a job below the production band (priority < {PRODUCTION_PRIORITY}), "
                             f"got priority {priority}: opportunistic tasks are preempted by anything")
        if info.data.get("gang") or info.data.get("min_tasks"):
            raise ValueError("expected a job without gang or min_tasks: a gang runs together, an "
                             "opportunistic task may be preempted alone")
        if info.data.get("alloc"):
            raise ValueError("expected a job outside alloc sets: its alloc set is charged, not the job")
        return value

    @property
    def opportunistic_cap(self) -> int:
        """How many of the job's tasks may run opportunistically: all (``true``), at most N, or none."""
        if self.opportunistic is True:
            return self.tasks
        return int(self.opportunistic)

    @property
    def gang_size(self) -> int:
        """How many of the job's tasks must run together: all with ``gang``, ``min_tasks``, or 0 (no gang)."""
        if self.gang:
            return self.tasks
        return self.min_tasks or 0

    @property
    def may_move(self) -> bool:
        """``movable``, or by default: batch work (batch or best-effort band, appclass batch)."""
        if self.movable is not None:
            return self.movable
        return band_of(self.priority) in (Band.BATCH, Band.BEST_EFFORT) and self.appclass == AppClass.BATCH

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            try:
                Constraint.parse(text)
            except ConstraintError as e:
                raise ValueError(str(e)) from None
        return value

    @field_validator("soft_constraints")
    @classmethod
    def _soft(cls, value: tuple[SoftConstraintSpec, ...]) -> tuple[SoftConstraintSpec, ...]:
        for soft in value:
            try:
                Constraint.parse(soft.constraint)
            except ConstraintError as e:
                raise ValueError(str(e)) from None
        return value

    @field_validator("max_per_domain")
    @classmethod
    def _domains(cls, value: dict[str, int]) -> dict[str, int]:
        for domain, limit in value.items():
            if domain not in FAILURE_DOMAINS:
                raise ValueError(f"expected a failure domain ({', '.join(FAILURE_DOMAINS)}), got {domain!r}")
            if limit < 1:
                raise ValueError(f"expected a limit >= 1 for {domain}, got {limit}")
        return value

    @field_validator("spread")
    @classmethod
    def _spread(cls, value: str | None) -> str | None:
        if value is not None and value not in FAILURE_DOMAINS:
            raise ValueError(f"expected a failure domain ({', '.join(FAILURE_DOMAINS)}), got {value!r}")
        return value

    @field_validator("placement")
    @classmethod
    def _placement(cls, value: str | None) -> str | None:
        return None if value is None else canonical_placement(value)

    @model_validator(mode="before")
    @classmethod
    def _owner_alias(cls, data: Any) -> Any:
        # "owner" reads more naturally in some specs; it means the same as "user". "$schema" and
        # "$id" are for editors (the published schema allows them) and mean nothing here.
        if isinstance(data, dict) and ("owner" in data and "user" not in data or EDITOR_KEYS & data.keys()):
            data = {k: v for k, v in data.items() if k not in EDITOR_KEYS}
            if "owner" in data and "user" not in data:
                data["user"] = data.pop("owner")
        return data

    def hard_constraints(self) -> tuple[Constraint, ...]:
        return tuple(Constraint.parse(text) for text in self.constraints)

    def preferences(self) -> tuple[SoftConstraint, ...]:
        return tuple(SoftConstraint(Constraint.parse(s.constraint), s.weight) for s in self.soft_constraints)


def parse_job_spec(data: Any) -> Any:
    """Validate a decoded spec (a dict): a :class:`JobSpec`, or an alloc set's spec when its ``kind``
    is ``allocset`` (corral.model.allocset.AllocSetSpec); raise :class:`SpecError` naming each bad field."""
    if not isinstance(data, dict):
        raise SpecError([("spec", f"expected a mapping of job fields, got {type(data).__name__}")])
    kind = data.get("kind", JOB)
    if kind not in (JOB, ALLOCSET):
        raise SpecError([("kind", f"expected {JOB} or {ALLOCSET}, got {kind!r}")])
    if kind == ALLOCSET:
        from corral.model.allocset import AllocSetSpec

        model: type[BaseModel] = AllocSetSpec
    else:
        model = JobSpec
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise SpecError(with_suggestions(field_errors(e, default="spec"), model)) from None


# The model of the mapping a field path ends in (for "did you mean" on an unknown field).
def _model_at(path: list[str], top: type[BaseModel]) -> type[BaseModel] | None:
    if not path:
        return top
    head = path[0]
    if head == "resources" and len(path) == 1:
        return ResourcesSpec
    if head == "restart" and len(path) == 1:
        return RestartSpec
    if head == "health_check" and len(path) == 1:
        return HealthCheckSpec
    if head == "update" and len(path) == 1:
        return UpdateSpec
    if head == "soft_constraints" and len(path) == 2:
        return SoftConstraintSpec
    return None


def with_suggestions(errors: list[tuple[str, str]], top: type[BaseModel] | None = None) -> list[tuple[str, str]]:
    """Each "unknown field" error with the closest known field of its mapping, when one is close:
    ``prioirty: unknown field; did you mean `priority`?``."""
    from difflib import get_close_matches

    out = []
    for field, message in errors:
        if message == "unknown field":
            *parent, name = field.split(".")
            model = _model_at(parent, top or JobSpec)
            if model is not None:
                known = list(model.model_fields) + (["owner"] if not parent else [])
                close = get_close_matches(name, known, n=1, cutoff=0.6)
                message = (f"unknown field; did you mean `{close[0]}`?" if close
                           else f"unknown field; expected one of {', '.join(known)}")
        out.append((field, message))
    return out


def load_job_spec_text(text: str) -> JobSpec:
    """Read a YAML or JSON job spec (JSON is YAML)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError([("spec", f"not valid YAML/JSON: {e}".splitlines()[0])]) from None
    return parse_job_spec(data)


def load_job_spec(path: str | Path) -> JobSpec:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SpecError([("spec", f"cannot read {path}: {e.strerror}")]) from None
    return load_job_spec_text(text)


def job_spec_json_schema() -> str:
    """The published schema of a spec file (corral.model.schema)."""
    from corral.model.schema import job_spec_schema_text

    return job_spec_schema_text().rstrip("\n")
