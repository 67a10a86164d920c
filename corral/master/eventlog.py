"""What the master's log says about the events it logs: one info line per submit, placement,
preemption, eviction, upgrade of an opportunistic task, kill, failure and machine up or down, each with the causing command's id
(``cmd``) and what it is about (``job``, ``task``, ``machine``) as structured fields."""

from __future__ import annotations

import logging
from typing import Any

from corral.master.history import about

log = logging.getLogger("corral.master.events")


def _line(event: dict[str, Any], from_round: bool) -> tuple[int, str] | None:
    kind = event.get("type")
    if kind == "job_submitted":
        return logging.INFO, "job submitted"
    if kind == "task_scheduled":
        return logging.INFO, "task placed in reclaimed room" if event.get("reclaimed") else "task placed"
    if kind == "task_ended":
        via = event.get("via")
        if via == "evict":
            return logging.INFO, "task preempted" if from_round else "task evicted"
        if via == "fail":
            return logging.INFO, "task failed"
        return logging.DEBUG, f"task ended ({via})"
    if kind == "task_upgraded":
        return logging.INFO, "opportunistic task upgraded to regular"
    if kind == "job_killed":
        return logging.INFO, "job killed"
    if kind == "job_failed":
        return logging.WARNING, "job failed"
    if kind == "job_updated":
        return logging.INFO, "job updated"
    if kind == "machine_registered":
        return logging.INFO, "machine up"
    if kind == "machine_lost":
        return logging.WARNING, "machine down"
    return None


def log_events(events: list[dict[str, Any]], from_round: bool = False) -> None:
    """Log ``events`` (the dicts just appended to the store); ``from_round``: a scheduling round's."""
    if not log.isEnabledFor(logging.INFO):
        return
    for event in events:
        found = _line(event, from_round)
        if found is None or not log.isEnabledFor(found[0]):
            continue
        what = about(event)
        note = event.get("note")
        # A record made here, not by log.log: it skips the search of the stack for the caller (a
        # busy master logs a line per submit and per placement).
        record = logging.LogRecord(log.name, found[0], __file__, 0, found[1] + (f": {note}" if note else ""),
                                   None, None)
        record.cmd, record.event, record.seq = event.get("cmd") or None, event.get("type"), event.get("seq")
        record.job, record.task, record.machine, record.via = what.job, what.task, what.machine, event.get("via")
        log.handle(record)
