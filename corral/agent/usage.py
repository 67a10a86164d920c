"""Measure what each task uses: cgroup counters where there are any, else psutil over its process tree.

``UsageMeter.sample(key, pid, iso, box)`` returns ``{"cpu_milli", "memory_bytes"}``;
cpu is the rate of cumulative CPU time since the previous sample of the same
key (0 on the first sample). ``clock`` is a parameter so tests can step it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil

from corral.agent.isolation import Isolation, Sandbox


def tree_usage(pid: int) -> tuple[float, int]:
    """(cumulative cpu seconds, resident bytes) of ``pid`` and all its descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0
    cpu, rss = 0.0, 0
    for proc in procs:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
        except psutil.Error:
            continue
    return cpu, rss


class UsageMeter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._last: dict[str, tuple[float, float]] = {}  # key -> (wall, cpu seconds)

    def sample(self, key: str, pid: int | None, iso: Isolation, box: Sandbox | None) -> dict[str, int]:
        cpu_s, memory = iso.usage(box) if box is not None else (None, None)
        if (cpu_s is None or memory is None) and pid is not None:
            tree_cpu, tree_rss = tree_usage(pid)
            cpu_s = tree_cpu if cpu_s is None else cpu_s
            memory = tree_rss if memory is None else memory
        now = self.clock()
        cpu_milli = 0
        if cpu_s is not None:
            previous = self._last.get(key)
            if previous is not None and now > previous[0]:
                cpu_milli = max(0, int(round((cpu_s - previous[1]) / (now - previous[0]) * 1000)))
            self._last[key] = (now, cpu_s)
        return {"cpu_milli": cpu_milli, "memory_bytes": int(memory or 0)}

    def forget(self, key: str) -> None:
        self._last.pop(key, None)
