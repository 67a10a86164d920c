"""What the master knows of its tasks' health and of their OOM kills, from its agents' reports (sans-IO).

Both are soft state, kept on the task record from the statuses agents report
(``healthy``, ``oom_kills``, ``memory_limit``; docs/agent-protocol.md) and
re-learnt from the next reports after a master restart:

* health: a task whose spec has a ``health_check`` is ``healthy`` once its
  agent says so for its current placement, ``unhealthy`` when the agent's
  checks failed, and ``not yet healthy`` before the first check passed; a
  task without a check has no health (``None``) and counts as available while
  it runs. A rolling update counts only available tasks as up
  (corral.master.rollout).
* OOM kills: each agent counts the attempts of a placement the kernel's OOM
  killer ended; the master keeps the highest count per (machine, generation),
  so a task's total goes on across restarts on its machine and moves to other
  machines: ``killed at its memory limit 64Mi, 2 times``.
"""

from __future__ import annotations

from typing import Any

from corral.model.job import TaskState
from corral.model.resources import format_bytes

HEALTHY, UNHEALTHY, NOT_YET = "healthy", "unhealthy", "not yet healthy"


def note_status(task: Any, machine: str, status: dict[str, Any]) -> None:
    """Keep what a status of ``task``'s current placement on ``machine`` says of OOM kills."""
    kills = status.get("oom_kills")
    if not isinstance(kills, int) or isinstance(kills, bool) or kills <= 0:
        return
    key = (machine, int(status.get("generation") or 0))
    limit = status.get("memory_limit")
    seen = task.oom_kills.get(key, (0, 0))
    task.oom_kills[key] = (max(seen[0], kills), limit if isinstance(limit, int) and limit > 0 else seen[1])


def oom_count(task: Any) -> int:
    return sum(count for count, _ in task.oom_kills.values())


def oom_line(task: Any) -> str:
    """``killed at its memory limit 64Mi, 2 times`` (the last limit it was killed at), or ""."""
    count = oom_count(task)
    if not count:
        return ""
    limit = next(reversed(task.oom_kills.values()))[1]
    at = f"its memory limit {format_bytes(limit)}" if limit else "its memory limit"
    return f"killed at {at}, {count} time{'s' if count != 1 else ''}"


def has_check(job: Any, version: int) -> bool:
    """Does spec version ``version`` of ``job`` (the current one or one a task still runs) check health?"""
    if version == job.version:
        return job.spec.health_check is not None
    return bool((job.old_specs.get(version) or {}).get("health_check"))


def health(job: Any, task: Any) -> str | None:
    """``healthy``, ``unhealthy`` or ``not yet healthy`` for a running task with a check; else None."""
    if task.state is not TaskState.RUNNING or not has_check(job, task.version):
        return None
    agent = task.agent or {}
    if agent.get("generation") != task.generation:
        return NOT_YET
    healthy = agent.get("healthy")
    if healthy is True and agent.get("state") == "running":
        return HEALTHY
    return UNHEALTHY if healthy is False else NOT_YET


def available(job: Any, task: Any) -> bool:
    """Is ``task`` up for a rolling update's count: running, and healthy if it has a check?"""
    if task.state is not TaskState.RUNNING:
        return False
    word = health(job, task)
    return word is None or word == HEALTHY
