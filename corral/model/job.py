"""Jobs and tasks: identity, appclass, and the states a task goes through."""

from __future__ import annotations

from enum import Enum


class AppClass(str, Enum):
    LATENCY_SENSITIVE = "latency-sensitive"
    BATCH = "batch"


class TaskState(str, Enum):
    """Borg's figure 2: a task is pending, running or dead."""

    PENDING = "pending"
    RUNNING = "running"
    DEAD = "dead"


class JobState(str, Enum):
    """A job is pending or running while any task lives; then it has ended, and how it ended is its
    state: every task finished (``succeeded``), one failed for good (``failed``), or it was killed
    (by its user, or rejected because the job it waits for will never finish: ``killed``)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def ended(self) -> bool:
        return self in ENDED_JOB_STATES


ENDED_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED})
# "dead", the one end state of earlier versions, still names every ended job in filters.
JOB_STATE_ALIASES = {"dead": ENDED_JOB_STATES}


def job_end_state(via: str) -> JobState:
    """How a job ended, from the task transition that ended it (``finish``, ``fail``, ``kill``, ...)."""
    if via == "fail":
        return JobState.FAILED
    if via in ("kill", "reject"):
        return JobState.KILLED
    return JobState.SUCCEEDED  # the last live task finished (or a scale-down left only finished ones)


def task_name(index: int, job: str, user: str, cell: str) -> str:
    """Borg's stable task name ``<index>.<job>.<user>.<cell>``."""
    return f"{index}.{job}.{user}.{cell}"
