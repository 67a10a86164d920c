"""The CPU of tasks placed in reclaimed room (Borg §5.5), capped where the master says.

The master places non-production tasks in room other tasks reserved but do not
use; when their usage rises, that room shrinks. CPU is compressible: the master
tells the agent (``PUT /v1/reclaimed``, body ``{"cpu_milli": {task_id: m}}``,
the whole set each time) how many millicores each such task may use now, and the
agent lowers the task's CFS quota to it (cgroup v2 ``cpu.max``, v1
``cpu.cfs_quota_us``). A task not listed any more gets its own limit back. A task
that starts after it was listed is capped at the next tick. Memory is not
compressible: the master evicts instead (corral/master/reclamation.py).

:func:`caps` is the pure decision; :class:`ReclaimedCpu` writes it. Without a
writable cgroup (rlimit isolation) there is nothing to cap and nothing is written.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from corral.agent import cgroups
from corral.agent.isolation import CFS_PERIOD_US, CgroupV1, CgroupV2, Sandbox

log = logging.getLogger(__name__)

MIN_QUOTA_US = 1000  # the kernel's floor for a CFS quota


def quota_of(cpu_milli: int) -> int:
    """The CFS quota (µs per ``CFS_PERIOD_US``) of ``cpu_milli`` millicores."""
    return max(cpu_milli * CFS_PERIOD_US // 1000, MIN_QUOTA_US)


def caps(allowed: dict[str, int], own: dict[str, int | None]) -> dict[str, int | None]:
    """Per live task (``own``: its own quota, None for no cap), the quota it should have: the lower of
    its own and what the master allows it if it is listed in ``allowed``, else its own."""
    out = {}
    for task, quota in own.items():
        cpu = allowed.get(task)
        if cpu is None:
            out[task] = quota
        else:
            out[task] = quota_of(cpu) if quota is None else min(quota, quota_of(cpu))
    return out


def quota_file(isolation: Any, box: Sandbox) -> Path | None:
    """The file holding ``box``'s CFS quota, or None where the isolation has none."""
    if isinstance(isolation, CgroupV2):
        return box.dirs["unified"] / "cpu.max"
    if isinstance(isolation, CgroupV1) and "cpu" in box.dirs:
        return box.dirs["cpu"] / "cpu.cfs_quota_us"
    return None


def write_quota(isolation: Any, box: Sandbox, quota: int | None) -> bool:
    path = quota_file(isolation, box)
    if path is None:
        return False
    if isinstance(isolation, CgroupV2):
        cgroups.write(path, f"{'max' if quota is None else quota} {CFS_PERIOD_US}")
    else:
        cgroups.write(path, -1 if quota is None else quota)
    return True


class ReclaimedCpu:
    """Holds what the master last allowed and keeps the runner's live tasks' quotas at it."""

    def __init__(self, runner: Any):
        self.runner = runner
        self.allowed: dict[str, int] = {}
        self._written: dict[tuple[str, int], int | None] = {}  # (task, attempt) -> the quota written
        self._lock = threading.Lock()

    def set(self, allowed: dict[str, int]) -> dict[str, int | None]:
        """The master's new allowances (the whole set); returns the quota of every live task after it."""
        with self._lock:
            self.allowed = dict(allowed)
        return self.apply()

    def apply(self) -> dict[str, int | None]:
        """Write the quotas that differ from what was written (a runner tick calls it too)."""
        runner = self.runner
        with runner.lock:
            procs = {p.task_id: p for p in runner.procs.values()}
        with self._lock:
            allowed = dict(self.allowed)
            want = caps(allowed, {task: p.box.limits.cpu_quota_us for task, p in procs.items()})
            for task, quota in want.items():
                proc = procs[task]
                key = (task, proc.attempt)
                if key not in self._written and quota == proc.box.limits.cpu_quota_us:
                    self._written[key] = quota  # as its sandbox was made: nothing to write
                if self._written.get(key, -2) == quota:
                    continue
                try:
                    if write_quota(runner.isolation, proc.box, quota):
                        self._written[key] = quota
                except OSError as e:  # the task is ending (its cgroup went); the next tick looks again
                    log.warning("cannot set the CPU quota of %s: %s", task, e)
            live = {(task, p.attempt) for task, p in procs.items()}
            for key in [k for k in self._written if k not in live]:
                del self._written[key]
        return want
