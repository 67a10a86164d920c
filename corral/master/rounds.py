"""The one scheduling round, run verbatim by the live master and by the simulator.

A round: a snapshot of the cell (under the lock), a plan from the scheduler
(without it: the scheduler reads only its snapshot), a commit of what still
holds (under the lock), and the commit's outcome handed to ``persist``; stale
placements are planned again, at most ``retries`` times. What differs between
the live cell and the simulator is only what they hand in: the live master its
lock and a ``persist`` that appends to the store and delivers effects once
durable; the simulator no lock and a ``persist`` that delivers effects to its
simulated agents.

A round is skipped when nothing changed since one planned every pending task
(the same state gives the same answer), unless time alone can change the
answer: lost tasks waiting their turn, or the unschedulable queue's flush. A
round whose commit preempted, or changed the cell while tasks are parked or
ordered jobs wait, has not planned everything: its victims, the parked tasks
its changes may wake and the reasons of jobs waiting for the jobs it placed
are for the next round.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

from corral.sched.scheduler import Scheduler


@dataclass
class RoundResult:
    placed: int = 0
    preempted: int = 0
    unplaced: int = 0
    rounds: int = 0  # snapshot-plan-commit passes (1 + retries used); 0: skipped
    stale: list[str] = field(default_factory=list)  # placements still stale after the last retry
    conflicts: int = 0  # placements found stale at commit, over every pass
    skipped: bool = False
    persisted: Any = None  # what ``persist`` returned for the last commit (the live master's durability)

    def reply(self) -> dict[str, Any]:
        return {"placed": self.placed, "stale": self.stale, "preempted": self.preempted,
                "unplaced": self.unplaced, "rounds": self.rounds}


class SchedulingRounds:
    def __init__(self, core: Any, retries: int = 3):
        self.core = core
        self.retries = retries
        # (the state's seq, the queue's unpark count) when a round last planned every pending task
        self.planned: tuple[int, int] = (-1, -1)
        self.count = 0

    def run(self, scheduler: Scheduler | None = None, lock: ContextManager = None,
            persist: Callable[[Any], Any] = lambda out: None,
            stopped: Callable[[], bool] = lambda: False,
            keep: Callable[[Any], bool] | None = None) -> RoundResult:
        """One round; ``keep`` (a job -> bool): plan only the jobs of one scheduler profile."""
        core = self.core
        scheduler = scheduler or core.scheduler
        lock = lock or nullcontext()
        result = RoundResult()
        with lock:
            if (core.state.seq, core.queue.unparked) == self.planned and not core.time_may_change_plan():
                result.skipped = True
                return result
        only = None
        planned = (-1, -1)  # the (seq, unparked) through which this round planned every pending task, if it did
        for _ in range(1 + self.retries):
            with lock:
                if stopped():
                    break
                rnd = core.snapshot(only) if keep is None else core.snapshot(only, keep)
                seen = core.state.seq
            if not rnd.pending and not rnd.in_allocs:
                rnd.view.release()
                if only is None:
                    planned = (seen, core.queue.unparked)
                break
            plan = scheduler.schedule(rnd.view, rnd.pending)
            with lock:
                out = core.commit(rnd, plan)
                result.persisted = persist(out)
                # Planned means the next round could only give the same answer: nothing else
                # happened meanwhile, no victim went back to pending, and no parked task could
                # be woken by the room this commit changed.
                if (only is None and not out.reply["stale"] and core.state.seq == seen + len(out.events)
                        and not out.reply["preempted"]
                        and (not out.events or not (len(core.queue) or core.state.waiting))):
                    planned = (core.state.seq, core.queue.unparked)
            result.placed += out.reply["placed"]
            result.preempted += out.reply["preempted"]
            result.unplaced += out.reply["unplaced"]
            result.rounds += 1
            result.stale = out.reply["stale"]
            result.conflicts += len(out.reply["stale"])
            if not out.reply["stale"]:
                break
            only = set(out.reply["stale"])
        self.planned = planned
        self.count += 1
        return result
