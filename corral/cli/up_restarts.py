"""``corral up`` keeps its cell alive: a master or agent that exits is started again.

A crashed master comes back on its port from its store (the agents and their tasks run on: the
agents keep trying the master, and the new master takes the tasks back from their reports); a
crashed agent comes back on its state directory and re-adopts its tasks (corral/agent/survivors.py).

:class:`RestartPolicy` decides, from the times a child crashed, when it is started again: at once
the first time, then after ``backoff_s · 2^(n-1)`` (at most ``backoff_max_s``) for the n-th crash
within ``window_s``; more than ``max_restarts`` crashes within ``window_s`` and it gives up, with a
message saying so. It does no I/O and takes its clock as a parameter. :class:`Supervision` is the
shell ``LocalCell.supervise`` calls every half second: it polls the children, logs each crash and
each restart through ``echo``, and starts them again when their time comes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RestartPolicy:
    max_restarts: int = 5
    window_s: float = 120.0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    crashes: dict[str, deque] = field(default_factory=dict)

    def crashed(self, name: str, now: float) -> float | None:
        """``name`` crashed at ``now``: seconds until it is started again, or None to give up."""
        times = self.crashes.setdefault(name, deque())
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) > self.max_restarts:
            return None
        return 0.0 if len(times) == 1 else min(self.backoff_s * 2 ** (len(times) - 2), self.backoff_max_s)

    def count(self, name: str) -> int:
        return len(self.crashes.get(name, ()))


class Supervision:
    """Restarts the children ``restart(name)`` starts (it raises RuntimeError when a start fails,
    which counts as another crash); ``check(procs)`` says why the cell cannot go on, or None."""

    def __init__(self, restart: Callable[[str], None], echo: Callable[[str], None], policy: RestartPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.restart, self.echo = restart, echo
        self.policy = policy or RestartPolicy()
        self.clock = clock
        self.due: dict[str, float] = {}  # child -> when it is started again
        self.restarts = 0

    def check(self, procs: dict[str, Any]) -> str | None:
        now = self.clock()
        for name, proc in list(procs.items()):
            if name not in self.due and proc.poll() is not None:
                why = self._crashed(name, f"{name} exited with {proc.returncode}", now)
                if why is not None:
                    return why
        for name, at in sorted(self.due.items(), key=lambda item: item[1]):
            if at > now:
                continue
            del self.due[name]
            self.restarts += 1
            self.echo(f"corral up: starting {name} again (restart {self.policy.count(name)} of at most "
                      f"{self.policy.max_restarts} in {self.policy.window_s:.0f}s)")
            try:
                self.restart(name)
            except RuntimeError as e:
                why = self._crashed(name, f"{name} did not start again: {e}", self.clock())
                if why is not None:
                    return why
                continue
            self.echo(f"corral up: {name} is back (pid {procs[name].pid})")
        return None

    def _crashed(self, name: str, what: str, now: float) -> str | None:
        delay = self.policy.crashed(name, now)
        if delay is None:
            return (f"{what}; it crashed {self.policy.count(name)} times within {self.policy.window_s:.0f}s "
                    f"(at most {self.policy.max_restarts} restarts): giving up")
        self.due[name] = now + delay
        self.echo(f"corral up: {what}; starting it again" + (f" in {delay:g}s" if delay else ""))
        return None
