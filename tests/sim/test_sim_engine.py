import pytest

from corral.sim.engine import Engine


def test_events_run_in_time_order_and_ties_in_the_order_scheduled():
    engine = Engine()
    seen = []
    engine.at(5.0, seen.append, "b")
    engine.at(1.0, seen.append, "a")
    engine.at(5.0, seen.append, "c")
    engine.after(3.0, seen.append, "x")
    assert engine.run() == 4
    assert seen == ["a", "x", "b", "c"]
    assert engine.now == 5.0


def test_run_until_stops_at_that_time_and_keeps_later_events():
    engine = Engine()
    seen = []
    engine.at(2.0, seen.append, 2)
    engine.at(7.0, seen.append, 7)
    assert engine.run(until=5.0) == 1
    assert seen == [2] and engine.now == 5.0 and engine.next_time() == 7.0
    engine.run()
    assert seen == [2, 7] and engine.processed == 2


def test_an_event_can_schedule_more_events_but_not_in_the_past():
    engine = Engine()
    times = []

    def tick(n):
        times.append(engine.now)
        if n:
            engine.after(1.5, tick, n - 1)

    engine.at(0.0, tick, 3)
    engine.run()
    assert times == [0.0, 1.5, 3.0, 4.5]
    with pytest.raises(ValueError, match="before now"):
        engine.at(1.0, tick, 0)


def test_the_clock_is_what_the_master_reads():
    engine = Engine(start=10.0)
    clock = engine.clock
    engine.at(12.5, lambda: None)
    engine.run()
    assert clock.now() == 12.5


def test_the_engine_runs_on_the_one_manual_clock_and_the_clock_ends_at_until():
    from corral.master.clock import ManualClock

    engine = Engine(start=3.0)
    assert isinstance(engine.clock, ManualClock)
    engine.at(4.0, lambda: None)
    engine.run(until=9.0)
    assert engine.clock.now() == 9.0 and engine.last_event == 4.0
