"""Reaping the orphans a child subreaper adopts.

``corral up`` makes itself a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``)
so that a task orphaned by a killed agent stays its descendant and is found
when the cell stops. The kernel then hands every such orphan to it, and each
one that exits stays a zombie (``[sleep] <defunct>``) until it is waited for.

:class:`Reaper` is a thread that waits for them: every ``interval_s`` it
lists this process's children and calls ``waitpid(pid, WNOHANG)`` on each one
that is *not* one of its own: the children ``own()`` names (the ``Popen``
objects this process waits for itself; ``Popen.wait`` and ``poll`` must see
their exit status, which a ``waitpid(-1)`` would steal). ``lock`` is held
while listing, and must be held by whoever starts an own child until it is in
``own()``, so that a just-started child is never mistaken for an orphan.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterable

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux); False where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children(pid: int | None = None) -> list[int]:
    """The pids whose parent is ``pid`` (default: this process), zombies included."""
    pid = os.getpid() if pid is None else pid
    found: list[int] = []
    try:  # every thread's children: an orphan is adopted by any thread of the subreaper
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(p) for p in f.read().split()]
        return found
    except OSError:  # no /proc/PID/task/TID/children (a kernel without CONFIG_PROC_CHILDREN)
        import psutil

        try:
            return [c.pid for c in psutil.Process(pid).children()]
        except psutil.Error:
            return []


class Reaper:
    """A daemon thread that reaps exited children other than ``own()`` (see the module docstring);
    ``start()``, ``reap_once()`` (returns the pids reaped), ``stop()``."""

    def __init__(self, own: Callable[[], Iterable[int]], lock: threading.Lock | threading.RLock | None = None,
                 interval_s: float = 0.5):
        self.own, self.lock, self.interval_s = own, lock or threading.Lock(), interval_s
        self.reaped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reap_once(self) -> list[int]:
        done = []
        with self.lock:
            mine = set(self.own())
            for pid in children():
                if pid in mine:
                    continue
                try:
                    got, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue  # reaped meanwhile (psutil.wait_procs while the cell stops)
                if got == pid:
                    done.append(pid)
        self.reaped += len(done)
        return done

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.reap_once()

    def start(self) -> "Reaper":
        self._thread = threading.Thread(target=self._run, name="corral-up-reaper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
