"""The colocation policy: latency-sensitive reserves rise at once, fall after a hold; batch shares the rest.

Table-driven: each case is a list of steps (seconds on a fake clock, the tasks as measured) and the
caps in force on the batch tasks after the last step. No files, no processes, no sleeps.
"""

from __future__ import annotations

import pytest

from corral.agent.colocation import ColocationConfig, ColocationPolicy, SetCpuCap, TaskCpu, is_latency_sensitive
from corral.model.job import AppClass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ls(name: str, limit: int, usage: int = 0) -> TaskCpu:
    return TaskCpu(name, True, limit, usage)


def batch(name: str, limit: int, usage: int = 0) -> TaskCpu:
    return TaskCpu(name, False, limit, usage)


CONFIG = ColocationConfig(capacity_milli=8000, headroom=0.25, ls_floor=0.1, release_after_s=5.0, batch_floor_milli=10)

CASES = [
    ("an idle service reserves its floor and batch that fits in the rest is not capped",
     [(0, [ls("web", 2000), batch("b1", 4000)])], {"b1": None}),
    ("an idle service reserves its floor and batch beyond the rest is capped to it",
     [(0, [ls("web", 2000), batch("b1", 8000)])], {"b1": 8000 - 200}),
    ("a service's demand rising caps batch at once, with the headroom on top of the demand",
     [(0, [ls("web", 4000, usage=400), batch("b1", 8000)]),
      (0.2, [ls("web", 4000, usage=2000), batch("b1", 8000)])], {"b1": 8000 - 2500}),
    ("a reserve never exceeds the service's limit",
     [(0, [ls("web", 2000, usage=2000), batch("b1", 8000)])], {"b1": 6000}),
    ("a falling demand keeps the reserve until the hold has passed",
     [(0, [ls("web", 4000, usage=3200), batch("b1", 8000)]),
      (4.9, [ls("web", 4000, usage=400), batch("b1", 8000)])], {"b1": 4000}),
    ("after the hold the CPU goes back to batch",
     [(0, [ls("web", 4000, usage=3200), batch("b1", 8000)]),
      (5.0, [ls("web", 4000, usage=400), batch("b1", 8000)])], {"b1": 8000 - 500}),
    ("batch tasks share the budget in proportion to their limits",
     [(0, [ls("web", 4000, usage=4000), batch("big", 6000), batch("small", 2000)])], {"big": 3000, "small": 1000}),
    ("several services add their reserves",
     [(0, [ls("a", 2000, usage=1600), ls("b", 2000, usage=800), batch("b1", 8000)])], {"b1": 8000 - 2000 - 1000}),
    ("services reserving the whole machine leave batch its floor",
     [(0, [ls("a", 8000, usage=8000), batch("b1", 4000), batch("b2", 4000)])], {"b1": 10, "b2": 10}),
    ("a batch task without a cpu limit counts as the whole machine",
     [(0, [ls("web", 4000, usage=3200), batch("free", 0), batch("b1", 8000)])], {"free": 2000, "b1": 2000}),
    ("no service and batch within the machine: nothing is capped",
     [(0, [batch("b1", 4000), batch("b2", 4000)])], {"b1": None, "b2": None}),
]


@pytest.mark.parametrize("case, steps, want", CASES, ids=[c[0] for c in CASES])
def test_caps(case, steps, want):
    clock = Clock()
    policy = ColocationPolicy(CONFIG, clock)
    for t, tasks in steps:
        clock.now = t
        decision = policy.decide(tasks)
    assert decision.caps == want
    assert policy.caps == want


def test_no_service_and_batch_over_the_machine_shares_it_by_limits():
    # 16 cores of batch limits on an 8-core machine (overcommitted at limit): split evenly.
    policy = ColocationPolicy(CONFIG, Clock())
    assert policy.decide([batch("b1", 8000), batch("b2", 8000)]).caps == {"b1": 4000, "b2": 4000}


def test_only_changes_are_returned_and_a_cap_in_force_is_not_written_again():
    clock = Clock()
    policy = ColocationPolicy(CONFIG, clock)
    first = policy.decide([ls("web", 4000, usage=3200), batch("b1", 8000)])
    assert first.changes == [SetCpuCap("b1", 4000, first.changes[0].reason)]
    assert "reserve 4000m of 8000m" in first.changes[0].reason
    clock.now = 1
    assert policy.decide([ls("web", 4000, usage=3000), batch("b1", 8000)]).changes == []
    clock.now = 6
    back = policy.decide([ls("web", 4000, usage=0), batch("b1", 8000)])
    assert [(c.task_id, c.cap_milli) for c in back.changes] == [("b1", 7600)]


def test_a_task_that_left_is_forgotten_and_a_new_one_of_its_name_starts_afresh():
    clock = Clock()
    policy = ColocationPolicy(CONFIG, clock)
    policy.decide([ls("web", 4000, usage=4000), batch("b1", 8000)])
    assert policy.decide([batch("b1", 8000)]).caps == {"b1": None}
    assert policy.reserves == {}
    assert policy.decide([ls("web", 4000), batch("b1", 8000)]).caps == {"b1": 7600}


def test_a_reserve_that_rose_again_during_the_hold_restarts_it():
    clock = Clock()
    policy = ColocationPolicy(CONFIG, clock)
    policy.decide([ls("web", 4000, usage=3200), batch("b1", 8000)])
    clock.now = 4
    policy.decide([ls("web", 4000, usage=3200), batch("b1", 8000)])  # at the reserve again: held from t=4
    clock.now = 8
    assert policy.decide([ls("web", 4000, usage=0), batch("b1", 8000)]).caps == {"b1": 4000}
    clock.now = 9
    assert policy.decide([ls("web", 4000, usage=0), batch("b1", 8000)]).caps == {"b1": 7600}


@pytest.mark.parametrize("appclass, want", [(AppClass.LATENCY_SENSITIVE, True), (AppClass.BATCH, False),
                                            ("latency-sensitive", True), ("batch", False)])
def test_latency_sensitive_comes_from_the_appclass(appclass, want):
    assert is_latency_sensitive(appclass) is want


@pytest.mark.parametrize("bad", [dict(capacity_milli=0), dict(capacity_milli=1000, headroom=-1),
                                 dict(capacity_milli=1000, ls_floor=2)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        ColocationConfig(**bad)
