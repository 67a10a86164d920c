"""Online/offline colocation on one machine (Alibaba Sigma/Fuxi): latency-sensitive work gets the CPU first.

A sans-IO policy. :meth:`ColocationPolicy.decide` takes what each live task
on the machine used over the last interval and returns the CPU caps to write
(``SetCpuCap``); a thin shell (``corral.agent.throttle``) measures and writes
them to the task's cgroup (``cpu.max`` / ``cpu.cfs_quota_us``). The clock is a
parameter; nothing here reads a file or a clock of its own.

The rule, per decision:

* every latency-sensitive (LS) task holds a *reserve*: its demand (the CPU it
  used over the interval) times ``1 + headroom``, at least
  ``ls_floor`` of its limit, at most its limit. A reserve rises at once when
  the demand rises, and falls only after the demand stayed lower for
  ``release_after_s`` (hysteresis: the CPU is given back, not flapped);
* batch tasks share what the reserves leave of the machine's CPU
  (``capacity − Σ reserves``), each in proportion to its limit and never
  less than ``batch_floor_milli`` (a throttled task still makes progress and
  can exit); when their limits fit in it, none is capped (``cap_milli=None``:
  each launch's own limit stands).

Demand is read from usage because LS tasks already win the CPU under
contention (their CPU weight is ten times a batch task's of the same size,
``isolation.LS_WEIGHT_FACTOR``), so what they want shows as what they get
within one interval. Run-queue wait (``/proc/<pid>/schedstat``) was tried
as a second signal and left out: a service that polls sleeps and wakes a few
hundred times a second and waits a little at every wake-up, which reads as
half a core of demand that it never uses.

Which tasks are LS: ``appclass: latency-sensitive`` in the job spec (see
:func:`is_latency_sensitive`); every other task is batch here. Only changes
are returned: a cap that is already in force is not written again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from corral.model.job import AppClass


def is_latency_sensitive(appclass: AppClass | str) -> bool:
    """LS or batch, from the task's appclass (its priority band decides eviction order, not this)."""
    return AppClass(appclass) is AppClass.LATENCY_SENSITIVE


@dataclass(frozen=True)
class TaskCpu:
    """One live task's CPU over the last interval, in millicores."""

    task_id: str
    latency_sensitive: bool
    limit_milli: int  # its cpu limit (what it asked for); 0: none given
    usage_milli: int = 0  # CPU it got


@dataclass(frozen=True)
class SetCpuCap:
    """Cap ``task_id`` at ``cap_milli`` (None: back to its own limit). ``reason`` is for the log."""

    task_id: str
    cap_milli: int | None
    reason: str = ""


@dataclass(frozen=True)
class ColocationConfig:
    capacity_milli: int  # the machine's CPU, as the agent registered it
    headroom: float = 0.25  # an LS reserve is its demand times 1 + this
    ls_floor: float = 0.1  # an LS reserve is at least this fraction of its limit, even when idle
    release_after_s: float = 5.0  # a reserve falls only after the demand stayed lower this long
    batch_floor_milli: int = 10  # no batch task is capped below this (the kernel's minimum quota: 1 ms / 100 ms)

    def __post_init__(self) -> None:
        if self.capacity_milli <= 0:
            raise ValueError(f"capacity_milli: expected > 0, got {self.capacity_milli}")
        if self.headroom < 0 or not 0 <= self.ls_floor <= 1 or self.release_after_s < 0:
            raise ValueError("expected headroom >= 0, 0 <= ls_floor <= 1 and release_after_s >= 0")


@dataclass
class _Reserve:
    milli: int
    since: float  # when the demand last reached this reserve


@dataclass
class Decision:
    """What one decision saw and chose (the shell logs it and the tests read it)."""

    ls_reserved_milli: int
    batch_budget_milli: int
    caps: dict[str, int | None]  # batch task -> cap in force after this decision
    changes: list[SetCpuCap] = field(default_factory=list)


class ColocationPolicy:
    """The machine's LS reserves and batch caps; ``decide`` once per measuring interval."""

    def __init__(self, config: ColocationConfig, clock: Callable[[], float]):
        self.config = config
        self.clock = clock
        self.reserves: dict[str, _Reserve] = {}  # LS task -> its reserve
        self.caps: dict[str, int | None] = {}  # batch task -> the cap last handed out

    def target(self, task: TaskCpu) -> int:
        """What an LS task's reserve should be for the demand just seen."""
        c = self.config
        limit = task.limit_milli if task.limit_milli > 0 else c.capacity_milli
        demand = max(task.usage_milli, 0)
        wanted = math.ceil(round(demand * (1 + c.headroom), 6))
        return min(limit, max(wanted, math.ceil(c.ls_floor * limit)))

    def _reserve(self, task: TaskCpu, now: float) -> int:
        want = self.target(task)
        held = self.reserves.get(task.task_id)
        if held is None or want >= held.milli:
            self.reserves[task.task_id] = _Reserve(want, now)
        elif now - held.since >= self.config.release_after_s:
            # Lower for long enough: give back down to the demand now (it may rise again at once).
            self.reserves[task.task_id] = _Reserve(want, now)
        return self.reserves[task.task_id].milli

    def decide(self, tasks: Iterable[TaskCpu]) -> Decision:
        now = self.clock()
        tasks = list(tasks)
        ls = [t for t in tasks if t.latency_sensitive]
        batch = [t for t in tasks if not t.latency_sensitive]
        live = {t.task_id for t in tasks}
        for gone in [k for k in self.reserves if k not in live]:
            del self.reserves[gone]
        for gone in [k for k in self.caps if k not in live]:
            del self.caps[gone]
        reserved = sum(self._reserve(t, now) for t in ls)
        budget = max(self.config.capacity_milli - reserved, 0)
        caps = self.batch_caps(batch, budget)
        changes = []
        reason = (f"latency-sensitive tasks reserve {reserved}m of {self.config.capacity_milli}m; "
                  f"batch shares {budget}m")
        for task in batch:
            cap = caps[task.task_id]
            if task.task_id not in self.caps or self.caps[task.task_id] != cap:
                changes.append(SetCpuCap(task.task_id, cap, reason))
            self.caps[task.task_id] = cap
        return Decision(reserved, budget, dict(caps), changes)

    def batch_caps(self, batch: list[TaskCpu], budget: int) -> dict[str, int | None]:
        """Split ``budget`` over the batch tasks in proportion to their limits (a task without a cpu
        limit counts as the whole machine). Parts are proportional, so either every task's part
        reaches its limit (None for all: nobody is capped below its own limit) or none does."""
        weights = {t.task_id: (t.limit_milli if t.limit_milli > 0 else self.config.capacity_milli) for t in batch}
        total = sum(weights.values())
        if total <= budget:
            return {task_id: None for task_id in weights}
        floor = self.config.batch_floor_milli
        return {task_id: max(floor, budget * w // total) for task_id, w in weights.items()}
