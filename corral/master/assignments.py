"""What the master wants on each agent, worked out from a poll's answer (the link's soft state).

For each agent the link keeps an :class:`AgentMemory` between polls: the tasks of the last answer
it applied (and their ``seq`` for the next delta), what it last told the core, the assignments it
last sent, tasks the agent failed to report, and ended tasks kept for their logs.
:func:`plan_assignments` compares an answer with the cell's state and says which task set to send
in ``PUT /v1/assignments`` and which starts to send again; the link (link.py) does the I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from corral.master import drains
from corral.master.commands import StartTask

ENDED = ("finished", "failed", "killed")


def news_key(status: dict[str, Any]) -> tuple:
    """What about a task status is news for the master (not usage, which changes every poll)."""
    return (status.get("generation"), status.get("state"), status.get("exit_code"), status.get("last_error"),
            status.get("failures"), status.get("pid"))


@dataclass
class AgentMemory:
    """What a shard remembers about one agent between polls (soft state)."""

    polls: int = 0
    incarnation: str = ""
    reported: dict[str, tuple] = field(default_factory=dict)  # task -> news_key of its last status sent
    assigned: frozenset[str] | None = None  # the set last sent in PUT /v1/assignments
    absent: dict[str, int] = field(default_factory=dict)  # wanted task -> consecutive polls it was missing
    ended_at: dict[str, float] = field(default_factory=dict)  # task -> when it was first seen ended
    seq: int | None = None  # the agent's change seq in the last answer applied (None: ask for everything)
    known: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> its last status, all tasks
    settled: tuple | None = None  # (view, version) of the machine when its assignments were last checked
    next_expiry: float = float("inf")  # when the first ended task kept for its log stops being kept


def settled_mark(view: Any, name: str) -> tuple | None:
    """What says the master's tasks on ``name`` are as they were (the view bumps a machine's
    version on every change to it); the caller holds the master's lock."""
    at = view.index.get(name)
    return None if at is None else (id(view), int(view.version[at]))


def plan_assignments(master: Any, agent: AgentMemory, name: str, address: str, tasks: list[dict[str, Any]],
                     asked_at: int | None, keep_ended_s: float) -> tuple[frozenset[str], list[StartTask]]:
    """(the tasks ``name``'s agent should keep, the starts to send again) after an answer listing ``tasks``.

    A task the master placed there that the agent did not report for two answers in a row is sent
    again. A task the agent reported live that the master no longer wants there, and learned
    something of after ``asked_at`` (its seq when the poll was sent), stays listed until the next
    poll: the answer predates what the master knows (it ended meanwhile, and the agent keeps its
    log), and the next poll tells a stray copy from an ended one. Ended copies stay listed for
    ``keep_ended_s`` (their logs) unless the master wants the task there."""
    core = master.core
    now = time.monotonic()
    reported = {t["task_id"]: t for t in tasks}
    with master.lock:
        view = core.state.view
        agent.settled = settled_mark(view, name)
        at = view.index.get(name)
        # the running tasks placed there (allocs are reservations: no agent runs them)
        want = sorted(t for t in view.tasks[at] if not core.state.is_alloc(t)) if at is not None else []
        # old copies of start-first moves drain there under their tasks' names (drains.py): kept, never
        # started again (an old copy that went missing is gone; the new one is the task)
        draining = set(drains.on(core.state, name))
        if draining:
            holds = {core.state.draining[t].id for t in draining}
            want = [t for t in want if t not in holds]
        # and the copies waiting in its queue: an agent that lost its queue (it restarted) gets them again
        queued = {c.task for c in core.state.machine_queues.on(name)}
        want += sorted(queued)
        relaunch = []
        for task in want:
            if task in reported:
                agent.absent.pop(task, None)
                continue
            agent.absent[task] = agent.absent.get(task, 0) + 1
            if agent.absent[task] >= 2:
                launch = core.queued_launch(task, name) if task in queued else core.launch(task)
                relaunch.append(StartTask(task, name, address, launch))
                agent.absent[task] = 0
        newer = set()
        if asked_at is not None:
            for task, status in reported.items():
                record = core.state.tasks.get(task)
                if (status.get("state") not in ENDED and task not in want and record is not None
                        and record.history and record.history[-1].seq > asked_at):
                    newer.add(task)
    for task in list(agent.absent):
        if task not in want:
            del agent.absent[task]
    keep = set()
    for task, status in reported.items():
        if status.get("state") in ENDED and task not in want:
            first = agent.ended_at.setdefault(task, now)
            if now - first < keep_ended_s:
                keep.add(task)
    for task in list(agent.ended_at):
        if task not in reported:
            del agent.ended_at[task]
    agent.next_expiry = min(agent.ended_at.values(), default=float("inf")) + keep_ended_s
    return frozenset(want) | draining | keep | newer, relaunch
