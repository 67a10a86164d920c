"""The usage history: bounded rings per task and machine, fed with poll answers."""

from __future__ import annotations

import pytest

from corral.master.usage import UsageHistory, recorder


def status(name: str, cpu=10, memory=100, state="running"):
    return {"task_id": name, "state": state, "usage": {"cpu_milli": cpu, "memory_bytes": memory}}


def test_a_ring_keeps_at_most_its_size_of_the_newest_samples():
    history = UsageHistory(samples=3, every_s=0)
    for t in range(10):
        history.observe("m1", [status("a", cpu=t)], float(t), allocated=(500, 1000))
    assert [s[1] for s in history.task("a")] == [7, 8, 9]
    assert history.machine("m1") == [(7.0, 7, 100, 500, 1000), (8.0, 8, 100, 500, 1000), (9.0, 9, 100, 500, 1000)]


def test_samples_closer_than_every_s_are_dropped_so_fast_polls_do_not_shorten_the_window():
    history = UsageHistory(samples=100, every_s=2.0)
    for i in range(10):
        history.observe("m1", [status("a", cpu=i)], 0.5 * i)
    assert [s[0] for s in history.task("a")] == [0.0, 2.0, 4.0]


def test_a_machine_sums_its_live_tasks_and_ended_or_malformed_statuses_count_nothing():
    history = UsageHistory(every_s=0)
    history.observe("m1", [status("a", 100, 1000), status("b", 50, 500), status("c", 999, 999, state="finished"),
                           {"task_id": "d", "state": "running", "usage": {"cpu_milli": "lots", "memory_bytes": -5}},
                           {"state": "running"}, {"task_id": "e", "state": "running", "usage": None}], 1.0)
    assert history.machine("m1") == [(1.0, 150, 1500, 0, 0)]
    assert history.task("c") == [] and history.task("d") == [(1.0, 0, 0)] and history.task("e") == [(1.0, 0, 0)]


def test_tasks_and_machines_not_observed_for_keep_s_are_forgotten():
    history = UsageHistory(every_s=0, keep_s=10.0)
    history.observe("m1", [status("old")], 0.0)
    history.observe("m2", [status("new")], 5.0)
    assert history.tracked() == (2, 2)
    history.observe("m2", [status("new")], 15.0)
    assert history.tracked() == (1, 1) and history.task("old") == [] and len(history.task("new")) == 2


def test_bad_bounds_are_refused_and_a_master_without_a_history_records_nothing():
    with pytest.raises(ValueError, match="samples >= 1"):
        UsageHistory(samples=0)
    assert recorder(object()) is None
