"""The simulator with alloc sets: traces carry them (the native format too), the replay places jobs
inside allocs, and its conservation checks count a task in an alloc once (the alloc's)."""

from __future__ import annotations

import json

import pytest

from corral.master.state import InvariantError
from corral.sim.replay import Replay, ReplayConfig, check_allocs, replay
from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.native import read_trace, write_trace

GiB = 2**30


def cell(n, cpu=4000, memory=16 * GiB):
    return [TraceMachine(f"m{i}", cpu, memory) for i in range(n)]


def allocset(name="web-allocs", tasks=2, cpu=2000, memory=2 * GiB, arrival=0.0, **fields):
    return TraceJob(name, "u1", arrival, cpu, memory, tasks=tasks, kind="allocset", **fields)


def member(name, alloc="web-allocs", tasks=2, cpu=1000, memory=GiB, arrival=1.0, **fields):
    return TraceJob(name, "u1", arrival, cpu, memory, tasks=tasks, alloc=alloc, **fields)


def test_a_web_server_and_its_log_saver_share_allocs_and_the_cell_counts_the_allocs_once():
    # Two 4-core machines, two 2-core allocs; in each, a 1-core web task and a 1-core log saver:
    # allocation is the allocs' 4 of 8 cores, whatever runs inside them.
    jobs = [allocset(departure=500.0), member("web", duration=100.0), member("logsaver", duration=100.0)]
    r = Replay(Trace("t", cell(2), sort_jobs(jobs)), ReplayConfig(validate=True, sample_interval_s=10.0))
    result = r.run()
    s = result.summary
    assert s["rejected"] == 0 and s["started"] == 4 and s["finished"] == 4, s
    rows = {row[0]: row for row in result.samples}
    assert rows[50.0][1] == 0.5, "the allocs hold half the cpu; their tasks add nothing"
    assert rows[50.0][6] == 6, "running: 2 allocs and 4 tasks"
    assert rows[200.0][1] == 0.5, "the allocs keep their resources with no task in them"
    assert rows[600.0 if 600.0 in rows else max(rows)][1] == 0.0


def test_a_task_too_big_for_the_room_left_waits_until_its_alloc_has_room():
    jobs = [allocset(tasks=1), member("web", tasks=1, cpu=1500, duration=100.0),
            member("logsaver", tasks=1, cpu=1000, arrival=2.0, duration=10.0)]
    result = replay(Trace("t", cell(1), sort_jobs(jobs)), ReplayConfig(validate=True, round_interval_s=1.0))
    s = result.summary
    assert s["finished"] == 2 and max(result.delays) >= 99.0, "the log saver waited for the web task's room"


def test_departing_alloc_set_kills_the_jobs_inside_it():
    jobs = [allocset(tasks=1, departure=50.0), member("web", tasks=1)]
    result = replay(Trace("t", cell(1), sort_jobs(jobs)), ReplayConfig(validate=True, until=100.0))
    assert result.summary["ended"].get("kill") == 2  # the web task and the alloc


def test_the_conservation_check_catches_a_task_counted_against_both_its_alloc_and_its_machine():
    jobs = [allocset(tasks=1), member("web", tasks=1)]
    r = Replay(Trace("t", cell(1), sort_jobs(jobs)), ReplayConfig(validate=True, until=10.0))
    r.run()
    state = r.core.state
    running = {n: t for n, t in state.tasks.items() if t.state.value == "running"}
    check_allocs(state, running)
    web = state.tasks["0.web.u1.sim"]
    web.request = state.jobs["web-allocs.u1"].request  # as if the machine paid for it as well
    with pytest.raises(InvariantError, match="counted against its machine too"):
        check_allocs(state, running)


BAD = [
    ("a job in an alloc set that comes later", [member("web", arrival=0.0), allocset(arrival=1.0)], "expected an alloc set"),
    ("a task bigger than an alloc", [allocset(), member("web", cpu=3000)], "must fit one alloc"),
    ("an alloc set with a duration", [allocset(duration=5.0)], "has no duration"),
]


@pytest.mark.parametrize("case,jobs,words", BAD, ids=[c[0] for c in BAD])
def test_trace_rules_for_alloc_sets(case, jobs, words):
    with pytest.raises(TraceError, match=words):
        Trace("t", cell(1), sort_jobs(jobs)).check()


def test_the_native_format_carries_alloc_sets_and_their_jobs(tmp_path):
    trace = Trace("t", cell(1), sort_jobs([allocset(), member("web", alloc_placement="any")]))
    path = tmp_path / "t.jsonl"
    write_trace(trace, path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[2]["job"]["kind"] == "allocset" and lines[3]["job"]["alloc"] == "web-allocs"
    assert read_trace(path).jobs == trace.jobs
    path.write_text("\n".join(json.dumps(line) for line in [lines[0], lines[1], lines[3]]) + "\n")
    with pytest.raises(TraceError, match=r"t.jsonl:3: job web: alloc 'web-allocs'"):
        read_trace(path)
