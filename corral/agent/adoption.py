"""The supervisor's side of re-adoption: a task found running after the agent restarted.

``Adopt`` is an event like the others (``Supervisor.handle``); it is kept here, beside the one
handler it needs, so the state machine's module stays its size. The task comes back as ``running``
under the pid and the attempt it had (no spawn, nothing to carry out); its failures and restarts
start again from nothing, since the old agent's counts went with it. See ``survivors.py`` for how
the runner finds such processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from corral.agent import supervisor as sv
from corral.agent.launch import TaskLaunch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adopt(sv.Event):
    launch: TaskLaunch
    attempt: int
    pid: int
    started_at: float | None = None  # when the old agent saw it start (its clock); None: now


def adopt(supervisor: sv.Supervisor, ev: Adopt, now: float) -> list[sv.Instruction]:
    rec = supervisor.tasks.get(ev.launch.task_id)
    if rec is not None:
        # The restarted agent heard of the task before it finished looking (it adopts before it
        # serves, so this is a bug, not a race to lose a process in).
        raise sv.InvalidTransition(f"task {ev.launch.task_id}: adopted while already known ({rec.state})")
    rec = sv.TaskRecord(launch=ev.launch, state=sv.RUNNING, attempt=ev.attempt, pid=ev.pid,
                        started_at=ev.started_at if ev.started_at is not None else now)
    check = ev.launch.health_check
    rec.next_health_at = now + check.interval_s if check else None
    rec.story.append((ev.stimulus_id, None, sv.RUNNING, f"adopted pid {ev.pid} (attempt {ev.attempt})"))
    supervisor.tasks[ev.launch.task_id] = rec
    log.info("task %s: adopted pid %d, attempt %d, generation %d (stimulus %d)", ev.launch.task_id, ev.pid,
             ev.attempt, ev.launch.generation, ev.stimulus_id)
    return []
