"""The colocation shell: measure each live task's CPU, ask the policy, write the caps it returns.

``Colocator.step(tasks)`` reads, for every task, the cumulative CPU time of its
cgroup (``cpu.stat`` usage_usec / ``cpuacct.usage``), turns it into a rate
since the previous step, hands the rates to
:class:`~corral.agent.colocation.ColocationPolicy` and writes each changed
cap: ``cpu.max`` on cgroup v2, ``cpu.cfs_quota_us`` on v1. A cap of None
writes the task's own limit back. Under rlimit isolation there is nothing to
write; the decisions are still made (and logged).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from corral.agent import cgroups
from corral.agent.colocation import ColocationPolicy, Decision, TaskCpu
from corral.agent.isolation import CFS_PERIOD_US, Isolation, Sandbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveTask:
    task_id: str
    latency_sensitive: bool
    limit_milli: int
    box: Sandbox


def quota_us(cap_milli: int) -> int:
    """A cap in millicores as CFS quota per period (the kernel takes at least 1 ms)."""
    return max(cap_milli * CFS_PERIOD_US // 1000, 1000)


def write_cpu_cap(box: Sandbox, cap_milli: int | None) -> bool:
    """Cap ``box`` at ``cap_milli`` (None: its own limit again). False where it has no cpu cgroup."""
    quota = box.limits.cpu_quota_us if cap_milli is None else quota_us(cap_milli)
    if cap_milli is not None and box.limits.cpu_quota_us is not None:
        quota = min(quota, box.limits.cpu_quota_us)  # never above the task's own limit
    if "unified" in box.dirs:
        cgroups.write(box.dirs["unified"] / "cpu.max", f"{'max' if quota is None else quota} {CFS_PERIOD_US}")
        return True
    if "cpu" in box.dirs:
        cgroups.write(box.dirs["cpu"] / "cpu.cfs_quota_us", -1 if quota is None else quota)
        return True
    return False


class Colocator:
    """Applies a :class:`ColocationPolicy` to one machine's sandboxes; call ``step`` every interval."""

    def __init__(self, policy: ColocationPolicy, isolation: Isolation, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self.isolation = isolation
        self.clock = clock
        self._last: dict[str, tuple[float, float]] = {}  # task -> (time, cpu seconds)
        self.last: Decision | None = None

    def measure(self, task: LiveTask, now: float) -> TaskCpu:
        cpu_s, _ = self.isolation.usage(task.box)
        usage = 0
        previous = self._last.get(task.task_id)
        if cpu_s is not None:
            if previous is not None and now > previous[0]:
                usage = max(0, round((cpu_s - previous[1]) / (now - previous[0]) * 1000))
            self._last[task.task_id] = (now, cpu_s)
        return TaskCpu(task.task_id, task.latency_sensitive, task.limit_milli, usage)

    def step(self, tasks: list[LiveTask]) -> Decision:
        now = self.clock()
        live = {t.task_id for t in tasks}
        for gone in [k for k in self._last if k not in live]:
            del self._last[gone]
        decision = self.policy.decide([self.measure(t, now) for t in tasks])
        boxes = {t.task_id: t.box for t in tasks}
        for change in decision.changes:
            try:
                written = write_cpu_cap(boxes[change.task_id], change.cap_milli)
            except OSError as e:  # e.g. the task is exiting and its cgroup going
                log.debug("task %s: cannot write its cpu cap: %s", change.task_id, e)
                self.policy.caps.pop(change.task_id, None)  # not in force: the next step tries again
                continue
            if written:
                log.info("task %s: cpu cap %s (%s)", change.task_id,
                         "its limit" if change.cap_milli is None else f"{change.cap_milli}m", change.reason)
        self.last = decision
        return decision
