"""What a task's start costs here: seconds from the spawn being asked for to the process existing.

The master estimates a task's completion as wait + start-up + runtime (Apollo
§3.2; corral/sched/estimates/startup.py). The part the agent can honestly
measure is its own: from the supervisor asking for the spawn (the launch
accepted, or the task leaving the machine queue: a queued task's wait is the
wait's part, not the start's) to the process running (sandbox and cgroup made,
task user and work directory set up, exec done). Only the first attempt of a
launch counts: a restart after a failure finds everything in place already.
The status carries it as ``startup_s`` (null until then; docs/agent-protocol.md).
Pure: the supervisor hands in its record and its clock's time.
"""

from __future__ import annotations

from typing import Any


def spawning(rec: Any, now: float) -> None:
    """The supervisor asks for the record's first spawn now (later ones are restarts: not counted)."""
    if rec.spawn_asked_at is None and rec.startup_s is None:
        rec.spawn_asked_at = now


def started(rec: Any, now: float) -> None:
    """The record's process exists now: its start-up cost is known, once."""
    if rec.startup_s is None and rec.spawn_asked_at is not None:
        rec.startup_s = round(max(0.0, now - rec.spawn_asked_at), 6)
