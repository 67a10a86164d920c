"""The one scheduling round: retries of stale placements, bounded; the skip rule."""

from __future__ import annotations

import pytest

from corral.master.commands import MachineDown, Update
from corral.master.liveness import RescheduleLimiter
from corral.model.job import TaskState
from corral.sched.scheduler import Scheduler, SchedulerConfig

from tests.master.helpers import Harness, spec

P, R = TaskState.PENDING, TaskState.RUNNING


class Meddling(Scheduler):
    """Plans as usual, then changes the job under the plan ``times`` times (each plan goes stale)."""

    def __init__(self, h: Harness, times: int):
        super().__init__(SchedulerConfig())
        self.h, self.times, self.calls = h, times, 0

    def schedule(self, view, pending):
        plan = super().schedule(view, pending)
        self.calls += 1
        if self.calls <= self.times:
            self.h.run(Update(spec("web", priority=3 + self.calls)))
        return plan


# (case, retries, stale plans, rounds run, placed, still stale)
RETRIES = [
    ("a plan gone stale once is planned again and placed", 3, 1, 2, 1, []),
    ("a plan gone stale as often as the retries allow is placed on the last try", 2, 2, 3, 1, []),
    ("a plan that keeps going stale stops after the retries", 2, 5, 3, 0, ["0.web.alice.local"]),
    ("without retries a stale plan waits for the next round", 0, 1, 1, 0, ["0.web.alice.local"]),
]


@pytest.mark.parametrize("case,retries,stale,rounds,placed,left", RETRIES, ids=[c[0] for c in RETRIES])
def test_stale_placements_are_retried_a_bounded_number_of_times(case, retries, stale, rounds, placed, left):
    h = Harness(retries=retries)
    h.machine("m1")
    h.submit("web")
    meddling = Meddling(h, stale)
    result = h.core.rounds.run(meddling)
    assert (result.rounds, result.placed, result.stale) == (rounds, placed, left)
    assert meddling.calls == rounds
    assert h.task("web").state is (R if placed else P)
    # A round that retried did not plan every pending task in one pass: the next one runs (and places
    # what was left stale), and the one after that, with nothing changed, is skipped.
    after = h.core.rounds.run()
    assert not after.skipped and after.placed == len(left)
    assert h.core.rounds.run().skipped


def parked_cell() -> Harness:
    """A task that fits nowhere, planned and parked: the next round with nothing changed is skipped."""
    h = Harness()
    h.machine("m1", cpu="1")
    h.submit("big", cpu="2")
    first = h.core.rounds.run()
    assert first.unplaced == 1 and not first.skipped
    assert "0.big.alice.local" in h.core.queue.class_of
    return h


def _unpark(h: Harness) -> None:
    h.core.queue.unpark(["0.big.alice.local"])


def _flush_time(h: Harness) -> None:
    h.clock.advance(h.core.unpark_after_s)


def _new_event(h: Harness) -> None:
    h.machine("m2", cpu="1")


def _lost_tasks_held(h: Harness) -> None:
    h.core.reschedule = RescheduleLimiter(h.clock, rate_per_s=0.001, burst=1)
    h.machine("m2", cpu="1")
    h.submit("web", tasks=3, cpu="100m")
    h.core.rounds.run()
    h.run(MachineDown(h.task("web").machine))
    h.core.rounds.run()  # one released; two still held, waiting their turn
    assert len(h.core.reschedule) == 2


# (case, what happens after a round that planned every pending task, skipped?, plan-commit passes)
SKIPS = [
    ("nothing changed since the last round: the round is skipped", lambda h: None, True, 0),
    ("the clock moved but less than the flush interval: still skipped", lambda h: h.clock.advance(10), True, 0),
    ("a task was unparked: the round runs and plans it", _unpark, False, 1),
    ("the unschedulable queue's flush is due: the round runs and plans the parked task", _flush_time, False, 1),
    ("an event changed the state: the round runs", _new_event, False, 1),
    ("lost tasks wait their turn: the round runs (a snapshot that tells them their turn)", _lost_tasks_held,
     False, 0),
]


@pytest.mark.parametrize("case,then,skipped,passes", SKIPS, ids=[c[0] for c in SKIPS])
def test_a_round_is_skipped_only_when_nothing_could_change_its_answer(case, then, skipped, passes):
    h = parked_cell()
    then(h)
    result = h.core.rounds.run()
    assert result.skipped is skipped and result.rounds == passes
    if then is _lost_tasks_held:
        held = [t for t in h.state.tasks_of("web.alice") if h.core.reschedule.held(t.name)]
        assert len(held) == 2 and all("waiting its turn to be rescheduled" in t.reason for t in held)
    if skipped:
        assert result.reply() == {"placed": 0, "stale": [], "preempted": 0, "unplaced": 0, "rounds": 0}


def test_a_round_with_nothing_pending_plans_nothing_and_the_next_is_skipped():
    h = Harness()
    h.machine("m1")
    result = h.core.rounds.run()
    assert (result.skipped, result.rounds) == (False, 0)
    assert h.core.rounds.run().skipped


def test_a_round_hands_each_commit_to_persist_and_keeps_what_it_returned():
    h = Harness()
    h.machine("m1")
    h.submit("web", tasks=2)
    seen = []
    result = h.core.rounds.run(persist=lambda out: seen.append(out) or "durable")
    assert result.persisted == "durable" and result.placed == 2
    assert [len(out.events) for out in seen] == [2] and len(seen[0].effects) == 2


def test_a_stopped_round_plans_nothing():
    h = Harness()
    h.machine("m1")
    h.submit("web")
    result = h.core.rounds.run(stopped=lambda: True)
    assert result.rounds == 0 and h.task("web").state is P
    assert not h.core.rounds.run().skipped  # it planned nothing, so nothing counts as planned
