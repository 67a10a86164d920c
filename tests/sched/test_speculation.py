"""The straggler rule (corral.sched.speculation): enough siblings, slow enough, within the budgets."""

from __future__ import annotations

import pytest

from corral.sched.speculation import SpeculationConfig, sibling_quantile, stragglers

RUNTIMES = [4.0, 4.5, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 6.0]  # p90 = 5.1 (linear between 5.0 and 6.0)
CONFIG = SpeculationConfig(factor=1.5, quantile=0.9, min_finished=5, per_job=2, per_cell=10)


def test_the_quantile_is_computed_by_hand():
    assert sibling_quantile(RUNTIMES, 0.9) == pytest.approx(5.1)
    assert sibling_quantile([1.0, 3.0], 0.5) == pytest.approx(2.0)


def test_too_few_finished_siblings_copy_nothing_however_slow():
    assert stragglers(RUNTIMES[:4], [("t", 1000.0)], CONFIG, 0, 10) == []
    assert [s.task for s in stragglers(RUNTIMES[:5], [("t", 1000.0)], CONFIG, 0, 10)] == ["t"]


def test_only_tasks_beyond_factor_times_the_quantile_are_copied():
    running = [("fast", 7.0), ("edge", 5.1 * 1.5), ("slow", 7.7)]  # threshold 7.65
    found = stragglers(RUNTIMES, running, CONFIG, 0, 10)
    assert [s.task for s in found] == ["slow"]
    assert found[0].threshold_s == pytest.approx(7.65) and found[0].quantile_s == pytest.approx(5.1)


def test_the_reason_reads_as_the_issue_says():
    [s] = stragglers(RUNTIMES, [("3.sort.alice.local", 52.0)], CONFIG, 0, 10)
    assert s.reason("3.sort.alice", CONFIG) == "speculative copy of 3.sort.alice: running 52 s, siblings' p90 5.1 s × 1.5"


def test_the_per_job_budget_goes_to_the_slowest_first():
    running = [("a", 20.0), ("b", 40.0), ("c", 30.0)]
    assert [s.task for s in stragglers(RUNTIMES, running, CONFIG, 0, 10)] == ["b", "c"]
    assert [s.task for s in stragglers(RUNTIMES, running, CONFIG, 1, 10)] == ["b"]
    assert stragglers(RUNTIMES, running, CONFIG, 2, 10) == []


def test_the_cell_budget_bounds_it_too():
    running = [("a", 20.0), ("b", 40.0)]
    assert [s.task for s in stragglers(RUNTIMES, running, CONFIG, 0, 1)] == ["b"]
    assert stragglers(RUNTIMES, running, CONFIG, 0, 0) == []


def test_min_elapsed_is_a_floor_under_the_threshold():
    config = SpeculationConfig(min_finished=1, min_elapsed_s=30.0)
    assert stragglers([0.1], [("a", 20.0)], config, 0, 5) == []
    assert [s.task for s in stragglers([0.1], [("a", 31.0)], config, 0, 5)] == ["a"]


@pytest.mark.parametrize("bad", [dict(factor=0.5), dict(quantile=0.0), dict(quantile=1.5), dict(per_cell=-1)])
def test_bad_settings_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SpeculationConfig(**bad)
