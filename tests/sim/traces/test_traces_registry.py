"""load_trace: names, options, native files, and where the traces are found."""

from pathlib import Path

import pytest

from corral.sim.trace import TraceError
from corral.sim.traces import TRACE_NAMES, default_traces_dir, load_trace, write_trace

TRACES = Path(__file__).resolve().parents[3].parent / "shared" / "traces"


def test_the_names_and_the_default_folder_beside_the_repository():
    assert TRACE_NAMES == ("openb", "dlrm", "alibaba-batch", "azure", "synthetic", "omega")
    assert default_traces_dir() == TRACES


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(TraceError) as e:
        load_trace("google-2019")
    assert "google-2019" in str(e.value) and all(name in e.value.message for name in TRACE_NAMES)


@pytest.mark.parametrize("case, name, expected", [
    ("an unknown option", "synthetic:colour=red", "takes machines=200, tasks=20000, hours=24.0"),
    ("a value of the wrong type", "synthetic:machines=many", "option machines: expected int"),
    ("an option without a value", "synthetic:machines", "key=value"),
])
def test_a_bad_option_says_what_the_trace_takes(case, name, expected):
    with pytest.raises(TraceError, match=expected):
        load_trace(name)


def test_options_come_in_the_name_or_as_keywords_and_the_seed_is_passed_on():
    a = load_trace("synthetic:machines=20,tasks=500,hours=2", seed=5)
    b = load_trace("synthetic", seed=5, machines=20, tasks=500, hours=2.0)
    assert a.jobs == b.jobs and (len(a.machines), a.task_count()) == (20, 500)
    assert load_trace("synthetic:machines=20,tasks=500", seed=6).jobs != a.jobs


def test_a_jsonl_path_is_read_as_a_native_trace(tmp_path):
    trace = load_trace("synthetic:machines=10,tasks=100")
    write_trace(trace, tmp_path / "small.jsonl")
    assert load_trace(str(tmp_path / "small.jsonl")).jobs == trace.jobs


@pytest.mark.skipif(not (TRACES / "cloudsimpy-alibaba-batch" / "jobs.csv").exists(), reason="traces not found")
def test_a_path_overrides_where_a_loader_reads(tmp_path, head):
    head(TRACES / "cloudsimpy-alibaba-batch" / "jobs.csv", tmp_path / "jobs.csv", 11)
    trace = load_trace("alibaba-batch:machines=3", tmp_path)
    assert (len(trace.jobs), len(trace.machines)) == (10, 3) and str(tmp_path) in trace.source
