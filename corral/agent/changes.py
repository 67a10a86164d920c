"""Numbered task changes, so that a poll can fetch only what changed since the poll before it.

A master polls every agent every second or two and almost every answer says what the previous one
said. :class:`ReportSequence` numbers the changes the agent's statuses go through (a new task, a
change in what the master acts on — ``news_key`` — or a task the agent forgot): every change gets
the next ``seq``. A poll that names the ``seq`` and incarnation of the last answer it applied
(``GET /v1/state?since=S&incarnation=I``) gets the statuses of the tasks that changed after S and
the ids of those that left, plus the machine's usage; anything the agent cannot answer exactly (an
other incarnation, a seq it never gave, removals it no longer remembers) gets the full state. The
master asks for the full state every few polls anyway (usage, and the safety net).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from corral.agent.notifier import news_key

KEEP_REMOVED = 4096  # removals remembered; a poll from before the oldest one gets the full state


class ReportSequence:
    """The agent's change counter; ``observe`` each full list of statuses, ``since`` for a delta."""

    def __init__(self, keep_removed: int = KEEP_REMOVED):
        self.seq = 0
        self.floor = 0  # a delta since a seq below this would miss forgotten removals
        self.keep_removed = max(1, keep_removed)
        self._keys: dict[str, tuple] = {}
        self._changed_at: dict[str, int] = {}
        self._removed_at: dict[str, int] = {}  # in the order they left
        self._lock = threading.Lock()

    def observe(self, statuses: Iterable[dict[str, Any]]) -> int:
        """Number what changed since the last call; returns the current seq."""
        with self._lock:
            seen = set()
            for status in statuses:
                task = status["task_id"]
                seen.add(task)
                key = news_key(status)
                if self._keys.get(task) != key:
                    self.seq += 1
                    self._keys[task] = key
                    self._changed_at[task] = self.seq
                    self._removed_at.pop(task, None)
            if len(seen) != len(self._keys):
                for task in [t for t in self._keys if t not in seen]:
                    self.seq += 1
                    del self._keys[task], self._changed_at[task]
                    self._removed_at[task] = self.seq
                while len(self._removed_at) > self.keep_removed:
                    oldest = next(iter(self._removed_at))
                    self.floor = self._removed_at.pop(oldest)
            return self.seq

    def since(self, seq: int) -> tuple[set[str], list[str]] | None:
        """(tasks changed after ``seq``, tasks removed after it), or None if that cannot be told."""
        with self._lock:
            if seq < self.floor or seq > self.seq:
                return None
            changed = {t for t, at in self._changed_at.items() if at > seq}
            removed = [t for t, at in self._removed_at.items() if at > seq]
            return changed, removed


def delta_of(state: dict[str, Any], changes: ReportSequence, since: int | None,
             incarnation: str | None) -> dict[str, Any]:
    """``state`` (a full state whose tasks ``changes`` has observed) cut to what changed after
    ``since``, if asked for and answerable; else ``state`` itself. Either way it carries ``seq``."""
    state["seq"] = changes.seq
    if since is None or incarnation != str(state.get("incarnation")):
        return state
    delta = changes.since(since)
    if delta is None:
        return state
    changed, removed = delta
    state["tasks"] = [t for t in state["tasks"] if t["task_id"] in changed]
    state["since"] = since
    state["removed"] = removed
    return state
