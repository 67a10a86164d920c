"""Each scheduler profile's rounds: its own scheduler, its own ``SchedulingRounds``, its own counts.

The default profile is the core's own scheduler and rounds, so a cell with only the default
profile runs exactly the one round it always ran (no filter on the snapshot). Another profile gets
a ``Scheduler`` of its own (the cell's configuration with the profile's policy: a scheduler's caches
are not for two threads) and rounds whose snapshots keep only the jobs it owns. What each round
did is counted in the profile's ``ProfileStats`` (its backoff included); an external profile's
commits through the API are counted there too (plan_api.py). Pure: the caller brings the lock,
``persist`` and the time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, ContextManager

from corral.master.profiles import DEFAULT, Profiles, ProfileStats
from corral.master.rounds import RoundResult, SchedulingRounds


class ProfileRunners:
    def __init__(self, core: Any, profiles: Profiles | None = None):
        self.core = core
        self.profiles = profiles or Profiles()
        self.stats = {p.name: ProfileStats() for p in self.profiles}
        self._rounds: dict[str, SchedulingRounds] = {}
        self._schedulers: dict[str, Any] = {}

    def internal(self) -> list[str]:
        """The profiles the master runs itself (not ``external``), the default first if it is one."""
        return [p.name for p in self.profiles if not p.external]

    def keep(self, name: str) -> Callable[[Any], bool] | None:
        """The snapshot filter of profile ``name`` (None: every job, for the single default profile)."""
        if self.profiles.single:
            return None
        owner = self.profiles.owner
        return lambda job: owner(job.spec) == name

    def scheduler(self, name: str) -> Any:
        base = self.core.scheduler
        profile = self.profiles.by_name[name]
        if name == DEFAULT and profile.policy in (None, base.config.policy):
            return base
        config = base.config if profile.policy is None else replace(base.config, policy=profile.policy)
        cached = self._schedulers.get(name)
        if cached is None or cached.config != config:
            from corral.sched.scheduler import Scheduler

            cached = self._schedulers[name] = Scheduler(config, shares=base.shares)
        return cached

    def rounds(self, name: str) -> SchedulingRounds:
        if name == DEFAULT:
            return self.core.rounds
        if name not in self._rounds:
            self._rounds[name] = SchedulingRounds(self.core, self.core.rounds.retries)
        return self._rounds[name]

    def run(self, name: str, lock: ContextManager | None = None, persist: Callable[[Any], Any] = lambda out: None,
            stopped: Callable[[], bool] = lambda: False, scheduler: Any = None) -> RoundResult:
        """One round of profile ``name``, counted in its stats (a skipped round is not counted)."""
        if name not in self.profiles.by_name:
            raise KeyError(f"no scheduler profile {name!r}")
        result = self.rounds(name).run(scheduler or self.scheduler(name), lock, persist, stopped, keep=self.keep(name))
        if not result.skipped:
            self.record(name, result.placed, result.conflicts, max(0, result.rounds - 1), result.preempted)
        return result

    def record(self, name: str, placed: int, conflicts: int, retries: int, preempted: int) -> float:
        """Count a round or a commit of profile ``name``; the pause its conflicts earn, in seconds."""
        return self.stats[name].record(placed, conflicts, retries, preempted, self.core.clock.now())

    def waiting_reason(self, job: Any) -> str | None:
        """Why a task of ``job`` no round has looked at yet waits: an external profile's scheduler
        has not planned it (None for a profile the master runs: its next round will)."""
        name = self.profiles.owner(job.spec)
        if not self.profiles.by_name[name].external:
            return None
        return (f"waiting for scheduler profile {name}, which runs outside the master "
                f"(corral scheduler --profile {name}); none has planned this task yet")

    def owned(self) -> dict[str, int]:
        """Each profile -> how many live jobs it owns now."""
        counts = {p.name: 0 for p in self.profiles}
        owner = self.profiles.owner
        for job in self.core.state.jobs.values():
            if not job.state.ended:
                counts[owner(job.spec)] += 1
        return counts

    def describe(self) -> list[dict[str, Any]]:
        """Every profile with what it owns and did (``GET /api/v1/schedulers``, ``corral schedulers``)."""
        now = self.core.clock.now()
        owned = self.owned()
        pending = {p.name: 0 for p in self.profiles}
        owner = self.profiles.owner
        state = self.core.state
        for name in state.pending:
            job = state.jobs.get(state.tasks[name].job)
            if job is not None:
                pending[owner(job.spec)] += 1
        return [{**p.to_dict(), "jobs": owned[p.name], "pending_tasks": pending[p.name],
                 **self.stats[p.name].to_dict(now)} for p in self.profiles]
