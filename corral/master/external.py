"""An external scheduler's loop: a profile planned outside the master (``corral scheduler --profile``).

Each round: fetch the profile's snapshot, rebuild the cell from it, plan with this process's own
``Scheduler`` (the profile's policy unless one is given), post the plan; placements that went
stale are planned again on a fresh snapshot, at most ``retries`` times, as the master's own rounds
do (rounds.py). Between rounds it waits ``interval_s``, or longer while the master says it should
back off (its plans kept conflicting). The HTTP calls and the sleeping come in as callables, so a
test can run it against an in-process master and the CLI against a real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from corral.master.plan_wire import plan_body, rebuilt


@dataclass
class ExternalCounts:
    rounds: int = 0
    placed: int = 0
    conflicts: int = 0
    retries: int = 0
    backoffs: int = 0  # rounds put off because the master said to back off
    last: dict[str, Any] = field(default_factory=dict)


class ExternalScheduler:
    def __init__(self, profile: str, get: Callable[[str], Any], post: Callable[[str, dict], Any],
                 policy: str | None = None, retries: int = 3):
        self.profile, self.get, self.post = profile, get, post
        self.policy, self.retries = policy, retries
        self.counts = ExternalCounts()
        self._scheduler: Any = None

    def _planner(self, snapshot: dict[str, Any]) -> Any:
        from corral.sched.scheduler import Scheduler, SchedulerConfig

        policy = self.policy or snapshot.get("policy") or SchedulerConfig().policy
        if self._scheduler is None or self._scheduler.config.policy != policy:
            self._scheduler = Scheduler(SchedulerConfig(policy=policy))
        return self._scheduler

    def round(self) -> float:
        """One round (plus its retries); the seconds to wait before the next (the master's backoff)."""
        path = f"/schedulers/{self.profile}"
        snapshot = self.get(f"{path}/snapshot")
        if snapshot.get("backoff_s", 0) > 0:
            self.counts.backoffs += 1
            return float(snapshot["backoff_s"])
        pause = 0.0
        for attempt in range(1 + self.retries):
            if not snapshot["pending"] and not snapshot["in_allocs"]:
                break
            _, view, pending = rebuilt(snapshot)
            plan = self._planner(snapshot).schedule(view, pending)
            reply = self.post(f"{path}/plans", plan_body(snapshot, plan, attempt))
            self.counts.last = reply
            self.counts.placed += reply["placed"]
            self.counts.conflicts += len(reply["stale"])
            self.counts.retries += attempt > 0
            pause = float(reply.get("backoff_s", 0.0))
            if not reply["stale"] or attempt == self.retries:
                break
            snapshot = self.get(f"{path}/snapshot")
        self.counts.rounds += 1
        return pause

    def run(self, interval_s: float, sleep: Callable[[float], Any], stopped: Callable[[], bool],
            rounds: int | None = None, passing: Callable[[Exception], bool] = lambda e: False) -> ExternalCounts:
        """Rounds until ``stopped()`` (or ``rounds`` of them), ``interval_s`` apart at least. An error
        ``passing(e)`` accepts (a master briefly away) costs that round, waiting twice as long up to
        30 s before the next; any other is raised."""
        done, wait = 0, interval_s
        while not stopped() and (rounds is None or done < rounds):
            try:
                pause, wait = self.round(), interval_s
            except Exception as e:
                if not passing(e):
                    raise
                pause, wait = 0.0, min(30.0, 2 * wait)
            done += 1
            sleep(max(wait, pause))
        return self.counts
