"""The simulator runs gangs with the master's own code: a trace job with ``gang`` starts whole, and
a big gang behind a steady stream of small jobs gets its room (the reservation) or, without the
rule, waits until the stream stops."""

from __future__ import annotations

import json

import pytest

from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.native import read_trace, write_trace

GiB = 2**30


def _trace(stream_until: float) -> Trace:
    machines = [TraceMachine(f"m{i}", 4000, 16 * GiB) for i in range(4)]
    # half-machine jobs, 3 arriving each second, each running 3 s: more than the cell's 8 slots want
    small = [TraceJob(f"s{i:04d}", f"u{i % 3}", i / 3, 2000, GiB, duration=3.0) for i in range(int(stream_until * 3))]
    big = TraceJob("big", "carol", 5.0, 4000, GiB, tasks=4, duration=10.0, gang=True)
    return Trace("gangs", machines, sort_jobs(small + [big]))


def _gang_start(reserve_after, stream_until=60.0):
    sim = Replay(_trace(stream_until), ReplayConfig(validate=True, gang_reserve_after=reserve_after))
    sim.run()
    delays = sim.metrics.user_delays["carol"]
    assert len(delays) == 4 and len(set(delays)) == 1  # the gang's four tasks start together
    return delays[0]


def test_a_gang_behind_a_stream_of_small_jobs_starts_within_a_few_rounds():
    assert _gang_start(3) <= 12.0  # 3 failed rounds, then the reserved machines drain (3 s tasks)


def test_without_the_reservation_the_gang_waits_until_the_stream_ends():
    assert _gang_start(None) >= 60.0 - 5.0  # it arrived at t=5; the stream stops at t=60


def test_the_native_format_carries_gang_and_min_tasks(tmp_path):
    trace = Trace("t", [TraceMachine("m0", 4000, GiB)],
                  [TraceJob("a", "u", 0.0, 1000, GiB, tasks=4, gang=True),
                   TraceJob("b", "u", 1.0, 1000, GiB, tasks=4, min_tasks=2)])
    path = tmp_path / "t.jsonl"
    write_trace(trace, path)
    assert '"gang":true' in path.read_text() and '"min_tasks":2' in path.read_text()
    assert read_trace(path).jobs == trace.jobs
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"trace": "t"}) + "\n"
                   + json.dumps({"job": {"name": "a", "user": "u", "arrival": 0, "cpu": 1, "memory": 1, "tasks": 2,
                                         "min_tasks": 3}}) + "\n")
    with pytest.raises(TraceError, match=r"bad.jsonl:2: .*min_tasks"):
        read_trace(bad)
    bad.write_text(json.dumps({"trace": "t"}) + "\n"
                   + json.dumps({"job": {"name": "a", "user": "u", "arrival": 0, "cpu": 1, "memory": 1, "gang": 1}})
                   + "\n")
    with pytest.raises(TraceError, match=r"job.gang: expected true or false"):
        read_trace(bad)
