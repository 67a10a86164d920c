"""The native JSON-lines format: a lossless round trip and errors that name the line and the field."""

import json

import pytest

from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine
from corral.sim.traces.native import read_trace, write_trace

TRACE = Trace(
    "tiny",
    [TraceMachine("m0", 32000, 2**37, 8, "A100", (("rack", "r0"), ("power", "p0"))), TraceMachine("m1", 16000, 2**36)],
    [TraceJob("web", "alice", 0.0, 500, 2**30, tasks=3, departure=7200.5, priority=10, appclass="latency-sensitive",
              cpu_usage=200, memory_usage=2**29, max_per_machine=1),
     TraceJob("train", "bob", 10.25, 4000, 2**33, duration=3600.0, gpu=1, gpu_milli=500, gpu_models=("A100", "T4"))],
    source="made by hand", notes=["Nothing is estimated."],
)
HEADER = json.dumps({"trace": "t", "notes": []})
JOB = {"name": "a", "user": "u", "arrival": 0, "cpu": 100, "memory": 1024}


def test_a_trace_survives_a_round_trip_with_every_kind_of_field(tmp_path):
    write_trace(TRACE, tmp_path / "t.jsonl")
    back = read_trace(tmp_path / "t.jsonl")
    assert (back.name, back.machines, back.jobs, back.source, back.notes) == (
        TRACE.name, TRACE.machines, TRACE.jobs, TRACE.source, TRACE.notes)


def test_defaults_are_left_out_and_jobs_are_read_back_in_arrival_order(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([HEADER, json.dumps({"job": {**JOB, "name": "late", "arrival": 5}}),
                               json.dumps({"job": JOB})]) + "\n")
    trace = read_trace(path)
    assert [j.name for j in trace.jobs] == ["a", "late"] and trace.jobs[0] == TraceJob("a", "u", 0.0, 100, 1024)
    write_trace(trace, path)
    assert '"tasks"' not in path.read_text()


@pytest.mark.parametrize("case, line, expected", [
    ("not JSON", "{job: 1}", "expected a JSON object"),
    ("neither a machine nor a job", json.dumps({"task": JOB}), "'machine' or 'job'"),
    ("a missing field", json.dumps({"job": {k: v for k, v in JOB.items() if k != "cpu"}}),
     "job.cpu: required field is missing"),
    ("a string where an integer goes", json.dumps({"job": {**JOB, "cpu": "100m"}}), 'job.cpu: expected an integer'),
    ("a bool where a number goes", json.dumps({"job": {**JOB, "arrival": True}}), "job.arrival: expected a number"),
    ("an unknown field", json.dumps({"job": {**JOB, "colour": "red"}}), "job.colour: unknown field"),
    ("a priority out of range", json.dumps({"job": {**JOB, "priority": 12}}), "priority 12 is not in 0..11"),
    ("a repeated job name", json.dumps({"job": JOB}), "expected a unique name, 'a' is on line 2 too"),
    ("a machine without memory", json.dumps({"machine": {"name": "m", "cpu": 1}}), "machine.memory: required"),
    ("attributes that are not strings", json.dumps({"machine": {"name": "m", "cpu": 1, "memory": 1,
                                                                "attributes": {"rack": 3}}}), "machine.attributes"),
])
def test_a_bad_line_names_the_file_the_line_and_what_was_expected(tmp_path, case, line, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([HEADER, json.dumps({"job": JOB}), line]) + "\n")
    with pytest.raises(TraceError) as e:
        read_trace(path)
    assert (e.value.path, e.value.line) == (str(path), 3) and expected in e.value.message


@pytest.mark.parametrize("case, text, expected", [
    ("an empty file", "", "the file is empty"),
    ("a header without a trace name", json.dumps({"notes": []}), '"trace" a string'),
    ("notes that are not strings", json.dumps({"trace": "t", "notes": [1]}), "list of strings"),
])
def test_a_bad_header_is_refused_on_line_1(tmp_path, case, text, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(TraceError) as e:
        read_trace(path)
    assert e.value.line == 1 and expected in e.value.message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TraceError, match="nowhere.jsonl"):
        read_trace(tmp_path / "nowhere.jsonl")
