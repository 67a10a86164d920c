"""How a link shard hands its queued effects (starts, kills) to the agents between its polls.

A shard's thread alternates: effects until its next poll is due, then one poll of each of its agents.
Effects go in batches of at most ``MAX_BATCH``; the effects of different machines go at once
through the shard's pool, one machine's in order (a preemption's kill before the start it makes
room for). Once the poll is due at most one more batch goes first, so a burst of starts cannot
starve the shard's polls (agents unpolled for long register again).
"""

from __future__ import annotations

import logging
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

log = logging.getLogger(__name__)

MAX_BATCH = 64  # effects delivered between two looks at whether the poll is due
STOP = object()  # put on a shard's queue to end its thread


def drain(q: queue.Queue, until: float, deliver: Callable[[list[Any]], None]) -> bool:
    """Hand ``deliver`` batches of what ``q`` holds until ``until`` (monotonic); False once told to stop."""
    while True:
        wait = until - time.monotonic()
        try:
            item = q.get(timeout=wait) if wait > 0 else q.get_nowait()
        except queue.Empty:
            return True
        batch = [item]
        while len(batch) < MAX_BATCH:
            try:
                batch.append(q.get_nowait())
            except queue.Empty:
                break
        stop = any(e is STOP for e in batch)
        deliver([e for e in batch if e is not STOP])
        if stop:
            return False
        if time.monotonic() >= until:
            return True


def deliver_batch(effects: list[Any], deliver: Callable[[Any], None], pool: ThreadPoolExecutor | None) -> None:
    """``deliver`` each effect: machines at once (through ``pool``), each machine's in order."""
    by_machine: dict[str, list[Any]] = {}
    for effect in effects:
        by_machine.setdefault(effect.machine, []).append(effect)

    def one_machine(group: list[Any]) -> None:
        for effect in group:
            try:
                deliver(effect)
            except Exception:  # one effect's failure is not the others'
                log.exception("delivering %s failed", effect)

    if pool is not None and len(by_machine) > 1:
        list(pool.map(one_machine, by_machine.values()))
    else:
        for group in by_machine.values():
            one_machine(group)
