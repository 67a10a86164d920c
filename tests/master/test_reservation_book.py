"""Usage reports feed the core's per-task reservations; a machine shows limit, reservation and usage."""

import pytest

from corral.master.commands import Kill, UsageReport
from corral.master.errors import AdmissionError
from corral.master.reservation_book import usage_of_statuses
from tests.master.helpers import Harness

GiB = 2**30


def _cell():
    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi")
    h.submit("web", tasks=2, cpu="1", memory="2Gi")
    h.schedule()
    return h


def _names(h):
    return sorted(t for t in h.state.view.tasks[h.state.view.index["m1"]])


def test_a_machine_counts_its_tasks_at_their_limit_until_usage_is_reported():
    h = _cell()
    assert h.core.reservations.machine(h.state, "m1", _names(h)) == {
        "limit": {"cpu": 2000, "memory": 4 * GiB}, "reservation": {"cpu": 2000, "memory": 4 * GiB},
        "usage": {"cpu": 0, "memory": 0}}


def test_reservations_decay_towards_usage_over_the_decay_time_and_usage_is_shown():
    h = _cell()
    a, b = _names(h)
    gen = {n: h.state.tasks[n].generation for n in (a, b)}
    for _ in range(301):  # one report a second for 300 s: 200 millicores and 1 GiB each
        h.run(UsageReport("m1", {n: (gen[n], 200, GiB) for n in (a, b)}))
        h.clock.advance(1.0)
    seen = h.core.reservations.machine(h.state, "m1", [a, b])
    assert seen["limit"] == {"cpu": 2000, "memory": 4 * GiB}
    assert seen["usage"] == {"cpu": 400, "memory": 2 * GiB}
    assert seen["reservation"] == {"cpu": 440, "memory": 2 * 1181116007}  # usage + 10 %, rounded up


def test_a_report_of_another_generation_or_machine_changes_nothing():
    h = _cell()
    a, _ = _names(h)
    g = h.state.tasks[a].generation
    reply = h.run(UsageReport("m1", {a: (g + 1, 10, 10), "0.nosuch.alice.local": (1, 10, 10)})).reply
    assert reply == {"machine": "m1", "tasks": 0}
    assert h.core.reservations.machine(h.state, "m1", [a])["usage"] == {"cpu": 0, "memory": 0}
    with pytest.raises(AdmissionError):
        h.run(UsageReport("m9", {}))


def test_a_task_that_ended_is_forgotten_at_its_machines_next_report():
    h = _cell()
    a, b = _names(h)
    h.run(UsageReport("m1", {a: (h.state.tasks[a].generation, 100, GiB)}))
    assert a in h.core.reservations.estimator
    h.run(Kill("web.alice"))
    h.run(UsageReport("m1", {}))
    assert a not in h.core.reservations.estimator and len(h.core.reservations.estimator) == 0


def test_a_report_emits_no_event():
    h = _cell()
    a, _ = _names(h)
    assert h.run(UsageReport("m1", {a: (h.state.tasks[a].generation, 100, GiB)})).events == []


def test_poll_statuses_become_a_usage_report():
    statuses = [{"task_id": "0.web.alice.local", "generation": 3, "state": "running",
                 "usage": {"cpu_milli": 150, "memory_bytes": 1024}},
                {"task_id": "1.web.alice.local", "generation": 1, "state": "starting"},
                {"task_id": 7, "generation": 1, "usage": {}}]
    assert usage_of_statuses(statuses) == {"0.web.alice.local": (3, 150, 1024)}
