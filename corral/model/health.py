"""A job's health check and its update policy: the one definition the master admits and the agent runs.

``health_check`` is either an HTTP URL (healthy on a 2xx or 3xx answer) or a
command (healthy on exit 0, run with the task's environment, so
``["sh", "-c", "curl -fs http://127.0.0.1:$PORT_HTTP/healthz"]`` reaches a
dynamic port). The agent checks every ``interval_s`` (the first check after
``initial_delay_s``, default one interval), gives each check ``timeout_s``, and
counts the task unhealthy after ``failures`` checks in a row have failed
(then it restarts it, a failure against ``restart.max_failures``).

``update`` says how a rolling update treats failing tasks: the rollout pauses
when a task of the new version fails (its health check, or its process), and
with ``auto_rollback_after: N`` rolls back to the previous version once N
tasks of the new version have failed (corral.master.rollout).

Numbers are strict: ``"5"`` or ``true`` for a number is a mistake to name, not one to guess.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from corral.model.process import check_args, check_text


class HealthCheckSpec(BaseModel):
    """Either ``http`` or ``command``; how often, how long, how many failures make a task unhealthy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    http: str | None = Field(None, description="a URL; healthy on a 2xx or 3xx answer")
    command: tuple[str, ...] | None = Field(None, description="an argv list; healthy on exit 0")
    interval_s: float = Field(10.0, gt=0, le=86400, strict=True, description="seconds between checks")
    timeout_s: float = Field(5.0, gt=0, le=3600, strict=True, description="seconds a check may take")
    failures: int = Field(3, ge=1, le=1000, strict=True,
                          description="consecutive failed checks before the task is unhealthy (and restarted)")
    initial_delay_s: float | None = Field(None, ge=0, le=86400, strict=True,
                                          description="seconds after the start before the first check; "
                                                      "default: one interval")

    @field_validator("http")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None:
            check_text(value, "URL")
            if not value.startswith(("http://", "https://")) or len(value) > 2048:
                raise ValueError(f"expected an http:// or https:// URL (at most 2048 characters), got {value[:80]!r}")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            if not value or not value[0]:
                raise ValueError("expected a non-empty argv list like ['curl', '-f', 'http://...']")
            check_args(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "HealthCheckSpec":
        if (self.http is None) == (self.command is None):
            raise ValueError("expected exactly one of 'http' or 'command'")
        return self

    @property
    def first_delay_s(self) -> float:
        """Seconds from the start to the first check."""
        return self.interval_s if self.initial_delay_s is None else self.initial_delay_s


class UpdateSpec(BaseModel):
    """How a rolling update of the job treats tasks of the new version that fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_rollback_after: int | None = Field(
        None, ge=1, le=100_000, strict=True,
        description="roll back to the previous version once this many tasks of the new version failed; "
                    "default: never (the rollout pauses at the first failure and waits for an update or "
                    "`corral rollback`)")
