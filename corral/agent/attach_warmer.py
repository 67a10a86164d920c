"""Keeps cgroup v1's attach path warm while tasks are starting.

A task's joins of its cgroups (the shell's writes to ``cgroup.procs``,
isolation.py) take the kernel's cgroup attach lock, a per-CPU rwsem whose
writer waits out an RCU grace period unless another writer held it moments
before (rcu_sync). At a start every 0.1 s that wait is most of a task's start:
measured on the 2-core machine, the three joins of a task took 7.5 ms at the
median, 2.5 ms with a writer every 10 ms (every 50 ms: no better than none).

So while tasks are starting (``poke``, at each sandbox created) a thread
writes its own thread id to the ``tasks`` file of the cgroup it is already in,
every ``period_s``: a move to where it is, which changes nothing but takes the
lock, so the next join finds the fast path. It goes quiet ``linger_s`` after
the last poke (an idle machine pays nothing) and turns itself off for good
where that file cannot be written (an agent without rights over its own
cgroup).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

PERIOD_S = 0.01
LINGER_S = 2.0


def own_tasks_file(mount: Path, controller: str, cgroup_text: str | None = None) -> Path | None:
    """The ``tasks`` file of the calling thread's cgroup in ``controller``'s v1 hierarchy mounted
    at ``mount`` (from /proc/thread-self/cgroup, or ``cgroup_text``); None if it is in none."""
    if cgroup_text is None:
        try:
            cgroup_text = Path("/proc/thread-self/cgroup").read_text()
        except OSError:
            return None
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and controller in parts[1].split(","):
            return mount / parts[2].lstrip("/") / "tasks"
    return None


class AttachWarmer:
    def __init__(self, tasks_file: Callable[[], Path | None], period_s: float = PERIOD_S,
                 linger_s: float = LINGER_S, clock: Callable[[], float] = time.monotonic):
        self.tasks_file, self.period_s, self.linger_s, self.clock = tasks_file, period_s, linger_s, clock
        self.writes = 0
        self.disabled: str | None = None  # why it turned itself off
        self._until = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """A task is starting: keep the path warm for ``linger_s`` from now."""
        if self.disabled is not None:
            return
        self._until = self.clock() + self.linger_s
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="corral-attach-warmer", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self, timeout_s: float = 2.0) -> None:
        """End the thread (it has left no trace: it never moved)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        path = self.tasks_file()  # this thread's own cgroup: it inherits its creator's
        if path is None:
            self.disabled = "this thread is in no cgroup of that hierarchy"
            return
        tid = str(threading.get_native_id()).encode()
        while not self._stop.is_set():
            if self.clock() >= self._until:
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.write(fd, tid)
                finally:
                    os.close(fd)
                self.writes += 1
            except OSError as e:
                self.disabled = f"{path}: {e.strerror or e}"
                log.info("cgroup attach warmer off: %s", self.disabled)
                return
            self._stop.wait(self.period_s)
