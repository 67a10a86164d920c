"""What the master sends an agent (docs/agent-protocol.md), validated with pydantic.

``TaskLaunch`` is the body of ``PUT /v1/tasks/{task_id}``. Quantities are in
corral units (cpu millicores, bytes); memory also accepts ``"512Mi"`` and cpu
``"500m"`` for people typing at a shell. A bad body raises :class:`LaunchError`
whose ``errors`` name each bad field (``resources.memory``, ``restart.backoff_s``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from corral.model.health import HealthCheckSpec
from corral.model.job import AppClass
from corral.model.priority import MAX_PRIORITY, MIN_PRIORITY
from corral.model.process import check_args, check_env, check_text
from corral.model.quantity import parse_bytes, parse_cpu, parse_gpu_count, quantity_validator
from corral.model.ports import PORT_NAME, PORT_NAME_RULE
from corral.model.resources import check_port_range
from corral.model.spec import FieldErrors, RestartSpec
from corral.model.validation import field_errors

# Task ids become file and cgroup directory names: keep them to a safe alphabet.
TASK_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
TASK_ID_RULE = "1-200 letters, digits, '.', '_' or '-', not starting with '.' or '-'"


def valid_task_id(task_id: str) -> bool:
    return bool(TASK_ID.match(task_id))


class LaunchError(FieldErrors):
    """A launch request that does not validate; ``errors`` is a list of ``(field, message)``."""


class _Model(BaseModel):
    # Unknown fields are ignored so that a newer master can add fields
    # without breaking older agents.
    model_config = ConfigDict(extra="ignore", frozen=True)


ALLOC_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,120}")


class TaskResources(_Model):
    cpu: int = Field(0, ge=0, description="millicores")
    memory: int = Field(0, ge=0, description="bytes; 0 means no memory limit")
    disk: int = Field(0, ge=0)
    gpu: int = Field(0, ge=0)
    gpu_milli: int = Field(1000, ge=1, le=1000)

    # Read by corral.model.quantity with units=True: integers are corral units (millicores,
    # bytes), strings are quantities ("500m", "1.5" cores, "512Mi"); pydantic adds the field.
    _cpu = quantity_validator("cpu", parse=parse_cpu, units=True)
    _bytes = quantity_validator("memory", "disk", parse=parse_bytes, units=True)
    _gpus = quantity_validator("gpu", parse=parse_gpu_count)


class AllocRef(_Model):
    """The alloc a task runs in: its id (the same for every task of it on this machine) and the
    alloc's own resources, the limits of the parent sandbox its tasks share."""

    id: str
    resources: TaskResources

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ALLOC_ID.fullmatch(value):
            raise ValueError(f"expected lower-case letters, digits, '.', '_' or '-', got {value!r}")
        return value


class HealthCheck(HealthCheckSpec):
    """The job spec's health check as the agent receives it (corral.model.health; unknown fields
    ignored): an HTTP URL (healthy on a 2xx/3xx reply) or a command (healthy on exit 0)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class RestartPolicy(RestartSpec):
    """The job spec's restart policy as the agent receives it (unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class TaskLaunch(_Model):
    """Run this task here. Same ``task_id`` and ``generation`` again is a no-op."""

    task_id: str
    generation: int = Field(0, ge=0)
    # which copy of the master's task this is: 0, or a speculative copy's number (its task_id is then
    # its own, <task>.copy<N>); the process sees it as CORRAL_TASK_COPY
    copy_number: int = Field(0, ge=0, le=1000, alias="copy")  # "copy" itself is a pydantic method
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    name: str = ""
    user: str = Field("", description="the job's user: who the task runs as under --run-as per-user")
    command: str = Field(min_length=1)
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None
    resources: TaskResources = TaskResources()
    gpus: tuple[Annotated[int, Field(ge=0, le=1023)], ...] = Field(
        (), description="the indices of the machine's GPUs the master assigned the task")
    priority: int = Field(2, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    appclass: AppClass = AppClass.BATCH
    ports: tuple[int, ...] = ()
    named_ports: dict[str, int] = Field(default_factory=dict)  # passed to the task as PORT_<NAME>
    alloc: AllocRef | None = None  # run inside this alloc's parent sandbox (corral.agent.allocs)
    health_check: HealthCheck | None = None
    restart: RestartPolicy = RestartPolicy()
    queued: bool = Field(False, description=(
        "wait in this machine's queue and start the moment its limits fit here (machine queues)"))
    opportunistic: bool = Field(False, description=(
        "beyond its user's quota: evicted first, the lowest CPU weight; cleared by an upgrade in place "
        "(corral/agent/opportunistic.py)"))

    @field_validator("task_id")
    @classmethod
    def _task_id(cls, value: str) -> str:
        if not valid_task_id(value):
            raise ValueError(f"expected {TASK_ID_RULE}, got {value!r}")
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return check_port_range(value)

    @field_validator("named_ports")
    @classmethod
    def _named_ports(cls, value: dict[str, int]) -> dict[str, int]:
        for name, port in value.items():
            if not PORT_NAME.fullmatch(name) or not 1 <= port <= 65535:
                raise ValueError(f"expected names of {PORT_NAME_RULE} with ports in 1..65535, got {name}={port}")
        return value

    @model_validator(mode="after")
    def _named_are_ports(self) -> "TaskLaunch":
        missing = sorted(set(self.named_ports.values()) - set(self.ports))
        if missing:
            raise ValueError(f"named ports must be among ports; {missing} are not")
        return self

    # the same rules as the job spec's (corral.model.process): a launch the master sends passes them
    _env = field_validator("env")(classmethod(lambda cls, value: check_env(value)))
    _args = field_validator("args")(classmethod(lambda cls, value: check_args(value)))
    _command = field_validator("command")(classmethod(lambda cls, value: check_text(value, "command")))
    _workdir = field_validator("workdir")(classmethod(lambda cls, value: check_text(value, "working directory")))

    @property
    def display_name(self) -> str:
        return self.name or self.task_id


def parse_launch(data: Any, task_id: str | None = None) -> TaskLaunch:
    """Validate a decoded body; a missing ``task_id`` is taken from the URL, a different one is refused."""
    if not isinstance(data, dict):
        raise LaunchError([("body", f"expected a JSON object, got {type(data).__name__}")])
    if task_id is not None:
        body_id = data.get("task_id", task_id)
        if body_id != task_id:
            raise LaunchError([("task_id", f"body says {body_id!r} but the URL says {task_id!r}")])
        data = {**data, "task_id": task_id}
    try:
        return TaskLaunch.model_validate(data)
    except ValidationError as e:
        raise LaunchError(field_errors(e)) from None
