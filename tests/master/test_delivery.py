"""Effects between polls: batches, order per machine, machines at once, and polls on time."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from corral.master.delivery import MAX_BATCH, STOP, deliver_batch, drain


@dataclass(frozen=True)
class E:
    machine: str
    n: int


def test_a_due_poll_waits_for_at_most_one_more_batch_however_long_the_queue():
    q: queue.Queue = queue.Queue()
    for i in range(10 * MAX_BATCH):
        q.put(E("m1", i))
    batches = []
    assert drain(q, time.monotonic() - 1.0, batches.append) is True  # the poll is already due
    assert len(batches) == 1 and len(batches[0]) == MAX_BATCH and q.qsize() == 9 * MAX_BATCH


def test_effects_are_delivered_until_the_poll_is_due_then_drain_returns():
    q: queue.Queue = queue.Queue()
    got = []
    threading.Timer(0.05, lambda: q.put(E("m1", 1))).start()
    started = time.monotonic()
    assert drain(q, started + 0.3, lambda batch: got.extend(batch)) is True
    assert got == [E("m1", 1)] and time.monotonic() - started >= 0.29


def test_stop_ends_the_drain_after_delivering_what_came_before_it():
    q: queue.Queue = queue.Queue()
    for item in (E("m1", 1), STOP, E("m1", 2)):
        q.put(item)
    got = []
    assert drain(q, time.monotonic() + 5, lambda batch: got.extend(batch)) is False
    assert got == [E("m1", 1), E("m1", 2)]


def test_one_machines_effects_keep_their_order_and_machines_go_at_once():
    seen: dict[str, list[int]] = {"m1": [], "m2": []}
    at_once = threading.Barrier(2, timeout=5)  # both machines must be in flight together

    def deliver(effect: E) -> None:
        if effect.n == 0:
            at_once.wait()
        seen[effect.machine].append(effect.n)

    effects = [E(m, i) for i in range(5) for m in ("m1", "m2")]
    with ThreadPoolExecutor(4) as pool:
        deliver_batch(effects, deliver, pool)
    assert seen == {"m1": [0, 1, 2, 3, 4], "m2": [0, 1, 2, 3, 4]}


def test_a_failing_effect_does_not_stop_the_rest():
    got = []

    def deliver(effect: E) -> None:
        if effect.n == 1:
            raise RuntimeError("agent gone")
        got.append(effect.n)

    deliver_batch([E("m1", i) for i in range(3)], deliver, None)
    assert got == [0, 2]
