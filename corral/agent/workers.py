"""Daemon threads kept for reuse: each task's waiter and log pumps run on one, not a new thread.

``Thread.start()`` waits until the new thread runs: three of them per task start (a waiter, two log
pumps) cost the agent ~4 ms of each launch on a loaded 2-core machine, under its lock. A thread
that finished its job here waits for the next one instead of exiting, so in a steady stream of
tasks no thread is started at all. They are daemon threads (unlike ``ThreadPoolExecutor``'s,
which the interpreter joins at exit): a pump blocked on the pipe of a task that outlives the agent
must not keep the agent from exiting.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

log = logging.getLogger(__name__)


class Job:
    """One function run on a worker; ``join`` as a thread's."""

    def __init__(self, fn: Callable[[], None], name: str):
        self.fn, self.name = fn, name
        self._done = threading.Event()

    def join(self, timeout_s: float | None = None) -> None:
        self._done.wait(timeout_s)

    def is_alive(self) -> bool:
        return not self._done.is_set()


class Workers:
    def __init__(self, prefix: str = "corral-worker", idle_s: float = 60.0):
        self.prefix, self.idle_s = prefix, idle_s
        self._lock = threading.Lock()
        self._jobs: deque[Job] = deque()
        self._ready = threading.Condition(self._lock)
        self._idle = 0
        self.started = 0  # threads ever started (the others were reused)

    def run(self, fn: Callable[[], None], name: str = "") -> Job:
        job = Job(fn, name)
        with self._lock:
            self._jobs.append(job)
            if self._idle > len(self._jobs) - 1:
                self._ready.notify()
                return job
            self.started += 1
        threading.Thread(target=self._work, name=f"{self.prefix}-{self.started}", daemon=True).start()
        return job

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    self._idle += 1
                    woke = self._ready.wait(self.idle_s)
                    self._idle -= 1
                    if not woke and not self._jobs:
                        return  # idle for long: let the thread go
                job = self._jobs.popleft()
            try:
                job.fn()
            except Exception:  # the job's own failure; the worker goes on
                log.exception("%s failed", job.name or "a worker's job")
            finally:
                job._done.set()
