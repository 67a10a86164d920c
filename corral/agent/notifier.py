"""Telling the master at once when a task starts, exits or changes health.

The master's poll (``GET /v1/state``) stays the authority and the safety net;
a notification only spares the master the wait until its next poll, so a
slot freed by an ended task is scheduled again in milliseconds, not seconds.

``Notifier.offer(statuses)`` is all the runner calls, under its own lock: it
keeps the newest TaskStatus of each task whose news changed (:func:`news_key`)
and wakes the notifier thread; it never blocks on the network and never
raises. The thread waits ``coalesce_s`` for the rest of a burst (a task that
exits and its replacement that starts), then posts one small body::

    {"incarnation": "<the agent's incarnation>", "seq": 7, "tasks": [TaskStatus, ...]}

to ``POST {master}/api/v1/agents/{machine}/notify``. ``seq`` counts the
agent's reports from 1 and grows with every request, retries included, so the
master can drop one that arrives after a newer one. A failed send
(connection error, 429, 5xx) is retried with jittered exponential backoff,
merged with whatever changed meanwhile (the newest status of a task wins);
after ``give_up_after`` failed tries, or an answer that says trying again
cannot help (another 4xx), the batch is dropped: the next poll carries it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import httpx

from corral.agent.masters import Masters

log = logging.getLogger(__name__)

NOTIFY_PATH = "/api/v1/agents/{machine}/notify"
OK, RETRY, DROP = "ok", "retry", "drop"  # what a sender says became of one body

Sender = Callable[[dict[str, Any]], str]
MAX_TRACKED = 20_000  # tasks whose last news is remembered (ended tasks are forgotten by the agent, not here)


def news_key(status: dict[str, Any]) -> tuple:
    """What about a task status is news for the master: not usage or the restart countdown, which
    change all the time and travel with the polls."""
    return (status.get("generation"), status.get("state"), status.get("pid"), status.get("exit_code"),
            status.get("failures"), status.get("restarts"), status.get("last_error"), status.get("healthy"),
            status.get("oom_kills"), status.get("opportunistic"))


class HttpSender:
    """Posts one notification body to the master with the agent's token; says OK, RETRY or DROP."""

    def __init__(self, master: str, machine: str, token: str, timeout_s: float = 2.0, verify: Any = True):
        self.masters = Masters(master)  # one or several, comma-separated
        self.path = NOTIFY_PATH.format(machine=machine)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(1.0, timeout_s)), verify=verify)
        self.last_error = ""

    def __call__(self, body: dict[str, Any]) -> str:
        try:
            r = self.masters.post(self.client, self.path, json=body, headers=self.headers)
        except httpx.HTTPError as e:
            self.last_error = f"{type(e).__name__}: {e}"
            return RETRY
        if r.status_code // 100 == 2:
            return OK
        self.last_error = f"HTTP {r.status_code}: {r.text[:200]}"
        # 404: the master does not know this machine (yet); the poll after registering brings it all.
        return RETRY if r.status_code in (408, 429) or r.status_code >= 500 else DROP

    def close(self) -> None:
        self.client.close()


class Notifier:
    """One thread that carries coalesced task changes to the master; see the module docstring."""

    def __init__(self, send: Sender, incarnation: Any, coalesce_s: float = 0.002, backoff_s: float = 0.05,
                 backoff_max_s: float = 2.0, give_up_after: int = 8, max_batch: int = 500, seed: str = ""):
        self.send, self.incarnation = send, str(incarnation)
        self.coalesce_s, self.backoff_s, self.backoff_max_s = coalesce_s, backoff_s, backoff_max_s
        self.give_up_after, self.max_batch = max(1, give_up_after), max(1, max_batch)
        self.random = random.Random(seed)  # jitter, reproducible per agent name
        self.seq = 0
        self.sent = self.retries = self.dropped = 0  # bodies delivered, tries repeated, statuses given up
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}  # task -> its newest status not sent yet
        self._news: dict[str, tuple] = {}  # task -> news_key of the last status offered
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="corral-notify", daemon=True)

    # ---- the runner's side: never blocks, never raises -----------------------------------------

    def offer(self, statuses: list[dict[str, Any]]) -> None:
        """Queue the statuses whose news changed since the last offer of the same task."""
        try:
            with self._lock:
                for status in statuses:
                    task, key = status["task_id"], news_key(status)
                    if self._news.get(task) == key:
                        continue
                    if len(self._news) >= MAX_TRACKED and task not in self._news:
                        self._news.clear()  # bound the memory; costs at most one repeated notification per task
                    self._news[task] = key
                    self._pending[task] = status
                    self._idle.clear()
                    self._wake.set()
        except Exception:  # a notification is an optimisation: never let it hurt the agent's work
            log.exception("queueing a task notification failed")

    # ---- life cycle -------------------------------------------------------------------------------

    def start(self) -> "Notifier":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop without sending what is still queued (the master's next poll reads it)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing is queued or in flight (tests)."""
        return self._idle.wait(timeout_s)

    # ---- the thread -------------------------------------------------------------------------------

    def _take(self) -> dict[str, dict[str, Any]]:
        """Up to ``max_batch`` queued statuses, oldest first; the rest stay queued (and awake)."""
        with self._lock:
            if len(self._pending) <= self.max_batch:
                batch, self._pending = self._pending, {}
                self._wake.clear()
            else:
                tasks = list(self._pending)[: self.max_batch]
                batch = {t: self._pending.pop(t) for t in tasks}
            return batch

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            if self._stop.wait(self.coalesce_s):  # let the rest of the burst join this body
                return
            batch = self._take()
            if batch:
                self._deliver(batch)
            with self._lock:
                if not self._pending:
                    self._idle.set()

    def _deliver(self, batch: dict[str, dict[str, Any]]) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.give_up_after + 1):
            self.seq += 1
            body = {"incarnation": self.incarnation, "seq": self.seq, "tasks": list(batch.values())}
            try:
                outcome = self.send(body)
            except Exception as e:  # a sender bug must not end the thread
                log.warning("sending a task notification failed: %r", e)
                outcome = RETRY
            if outcome == OK:
                self.sent += 1
                return
            if outcome != RETRY or attempt == self.give_up_after:
                break
            self.retries += 1
            if self._stop.wait(delay * (0.5 + self.random.random())):
                return
            delay = min(delay * 2, self.backoff_max_s)
            with self._lock:  # what changed meanwhile goes in the same retry; the newest status wins
                for task in list(self._pending)[: max(0, self.max_batch - len(batch))]:
                    batch[task] = self._pending.pop(task)
                for task in [t for t in self._pending if t in batch]:
                    batch[task] = self._pending.pop(task)
                if not self._pending:
                    self._wake.clear()
        self.dropped += len(batch)
        log.info("gave up notifying the master of %d task changes; its next poll reads them", len(batch))
