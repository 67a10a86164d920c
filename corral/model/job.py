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
    PENDING = "pending"
    RUNNING = "running"
    DEAD = "dead"


def task_name(index: int, job: str, user: str, cell: str) -> str:
    """Borg's stable task name ``<index>.<job>.<user>.<cell>``."""
    return f"{index}.{job}.{user}.{cell}"
