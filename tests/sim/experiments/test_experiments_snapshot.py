from experiment_cells import GiB, job, machines, trace

from corral.sim.experiments.snapshot import alive_at, peak_time, resolve_time, snapshot


def _names(jobs):
    return [j.name for j in jobs]


def test_a_snapshot_holds_the_jobs_that_arrived_and_have_not_ended():
    t = trace(machines(2), [
        job("early", 1, 1000, arrival=0, duration=10),  # ends at 10
        job("gone", 1, 1000, arrival=0, departure=5),  # deleted at 5
        job("service", 1, 1000, arrival=2),  # no duration, no departure: alive from arrival on
        job("late", 1, 1000, arrival=20),
        job("bounded", 1, 1000, arrival=1, duration=100, departure=8),  # whichever comes first
    ])
    assert _names(snapshot(t, 6)) == ["early", "bounded", "service"]
    assert _names(snapshot(t, 10)) == ["service"]  # a job ending at t is no longer alive at t
    assert _names(snapshot(t, 20)) == ["service", "late"]


def test_the_peak_is_the_time_of_the_largest_requested_dominant_share():
    t = trace(machines(2, cpu=4000, memory=16 * GiB), [
        job("cpu-heavy", 2, 3000, memory=GiB, arrival=0, duration=10),  # cpu 6000/8000 = 0.75
        job("mem-heavy", 1, 100, memory=15 * GiB, arrival=20, duration=10),  # memory 15/32 < 0.75 alone
        job("more-mem", 1, 100, memory=12 * GiB, arrival=25, duration=10),  # with it: 27/32 = 0.84
    ])
    assert peak_time(t) == 25.0
    assert _names(snapshot(t)) == ["mem-heavy", "more-mem"]


def test_a_job_arriving_as_another_ends_does_not_add_to_it():
    t = trace(machines(1), [job("a", 1, 3000, arrival=0, duration=5), job("b", 1, 2000, arrival=5),
                            job("c", 1, 2500, arrival=7, duration=1)])
    # At 5 only b is alive (2000); at 7 b and c (4500) beat a alone (3000).
    assert peak_time(t) == 7.0


def test_times_are_seconds_or_peak():
    t = trace(machines(1), [job("a", 1, 1000, arrival=3)])
    assert resolve_time(t, "peak") == 3.0 and resolve_time(t, "12.5") == 12.5
    for bad in ("soon", "-1", "nan"):
        try:
            resolve_time(t, bad)
        except ValueError as e:
            assert "peak" in str(e)
        else:
            raise AssertionError(bad)
    assert alive_at([], 0) == [] and peak_time(trace(machines(1), [])) == 0.0
