"""What a job or task is doing, in the words `corral status`, the API and the UI show.

The master's lifecycle has three task states (pending, running, dead) and
five job states (pending, running, succeeded, failed, killed). What a user
needs to see is finer and comes from two places: how a task ended (the
``via`` of its last transition) and what its agent last reported about it
(``TaskRecord.agent``: starting, running, or failing and waiting to be
restarted). This module is the one place that turns both into words:

==============  ===================================================================
word            when
==============  ===================================================================
pending         waiting to be placed (its pending reason says why)
starting        placed; its agent is starting the process
running         placed and running
restarting      placed; its process failed and the agent restarts it after a back-off
succeeded       ended with exit 0
failed          ended: its agent gave up restarting it, on every machine it tried
killed          ended: killed by its user, its job failed, or rejected
==============  ===================================================================
"""

from __future__ import annotations

from typing import Any

from corral.master.health import oom_line
from corral.model.job import TaskState

TASK_WORDS = ("pending", "starting", "running", "restarting", "succeeded", "failed", "killed")
_ENDED_BY = {"finish": "succeeded", "fail": "failed", "kill": "killed", "reject": "killed"}


def task_word(task: Any) -> str:
    """One of :data:`TASK_WORDS` for a master ``TaskRecord``."""
    if task.state is TaskState.PENDING:
        return "pending"
    if task.state is TaskState.DEAD:
        via = task.history[-1].via if task.history else "kill"
        return _ENDED_BY.get(via, "killed")
    agent = task.agent or {}
    if agent.get("generation") != task.generation:
        return "starting"  # the agent has not reported this placement yet
    state = agent.get("state")
    if state == "backoff":
        return "restarting"
    if state == "starting":
        return "restarting" if agent.get("restarts") else "starting"
    return "running"


def last_exit(agent: dict[str, Any]) -> str:
    """``exit 127 "sh: foo: not found"``, ``exit 1``, or the error alone."""
    code, error = agent.get("exit_code"), (agent.get("last_error") or "").strip()
    parts = []
    if code is not None:
        parts.append(f"exit {code}")
    if error and error != f"exit code {code}":
        parts.append(f'"{_one_line(error)}"')
    return " ".join(parts)


def task_detail(task: Any, now: float) -> str:
    """One line on what a task is doing beyond its word, or "" when there is nothing to add:
    ``restarting: 4 restarts, next try in 8 s, last: exit 127 "sh: foo: not found"``; with the
    OOM kills its agents counted (``killed at its memory limit 64Mi, 2 times``) after it."""
    line, oom = _detail(task, now), oom_line(task)
    return f"{line}; {oom}" if line and oom else line or oom


def _detail(task: Any, now: float) -> str:
    word = task_word(task)
    if word in ("pending", "succeeded", "failed", "killed"):
        if word in ("failed", "killed") and task.history and task.history[-1].note:
            return f"{word}: {_one_line(task.history[-1].note)}"
        return ""
    agent = task.agent or {}
    if agent.get("generation") != task.generation:
        return f"starting on {task.machine}" if task.machine else ""
    restarts = int(agent.get("restarts") or 0)
    parts = []
    if restarts:
        parts.append(f"{restarts} restart{'s' if restarts != 1 else ''}")
    if word == "restarting":
        due = task.agent_next_try_at
        if due is not None:
            parts.append(f"next try in {max(due - now, 0.0):.0f} s")
    last = last_exit(agent) if (restarts or word == "restarting") else ""
    if last:
        parts.append(f"last: {last}")
    return f"{word}: {', '.join(parts)}" if parts else ""


def job_end_reason(job: Any) -> str:
    """How an ended job ended, from its last transition: for a failed job the failing task and its
    last error (``task 3 failed on m1; last error: exit 127 ...``); "" while it lives."""
    if not job.state.ended or not job.history:
        return ""
    if job.state.value == "succeeded":
        return "every task succeeded"
    last = job.history[-1]
    return _one_line(last.note) if last.note else job.state.value


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
