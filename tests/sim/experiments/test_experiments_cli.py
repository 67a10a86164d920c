import json
import sys
import types

import pytest
import typer
from experiment_cells import job, machines, trace
from typer.testing import CliRunner

from corral.cli.sim_experiments import register
from corral.sim.trace import TraceError


def _app() -> typer.Typer:
    app = typer.Typer()
    sim = typer.Typer()
    app.add_typer(sim, name="sim")
    register(sim)
    return app


@pytest.fixture
def loaders(monkeypatch):
    """A stand-in for corral.sim.traces: 'tiny' is a small cell; any path is a malformed file."""
    calls = []

    def load_trace(name, path=None, *, seed=0):
        calls.append((name, path, seed))
        if path is not None:
            raise TraceError(path, 3, "expected 7 comma-separated fields, got 2")
        if name != "tiny":
            raise ValueError(f"unknown trace {name!r}; expected tiny")
        return trace(machines(8), [job("web", 4, 3000), job("batch", 6, 1000, priority=1, cpu_usage=400)])

    monkeypatch.setitem(sys.modules, "corral.sim.traces", types.SimpleNamespace(load_trace=load_trace))
    return calls


def _invoke(*args):
    return CliRunner().invoke(_app(), ["sim", *args])


def test_each_experiment_prints_one_json_line_last_and_writes_its_plot(loaders, tmp_path):
    for experiment in ("compaction", "segregate", "buckets", "reclaim"):
        result = _invoke(experiment, "--trace", "tiny", "--trials", "2", "--workers", "1", "--json",
                         "--out", str(tmp_path), "--seed", "5")
        assert result.exit_code == 0, result.output
        last = json.loads(result.stdout.strip().splitlines()[-1])
        assert last["experiment"] == experiment and last["seeds"] == [5, 6]
        assert list(last)[-2:] == ["seconds", "events_per_s"]
        assert (tmp_path / f"{experiment}.png").stat().st_size > 0
    assert loaders[0] == ("tiny", None, 5)


def test_without_json_a_table_is_printed(loaders, tmp_path):
    result = _invoke("segregate", "--trace", "tiny", "--trials", "1", "--plot", str(tmp_path / "s.png"))
    assert result.exit_code == 0, result.output
    assert "combined" in result.stdout and "extra_pct_p90" in result.stdout and (tmp_path / "s.png").exists()


def test_a_malformed_trace_file_is_one_line_naming_the_file_and_the_line(loaders, tmp_path):
    result = _invoke("compaction", "--trace", "tiny", "--path", str(tmp_path / "bad.csv"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'bad.csv'}:3: expected 7 comma-separated "
                                                  "fields, got 2"]


@pytest.mark.parametrize("args, says", [
    (["--trials", "0"], "error: --trials: expected an integer >= 1, got 0"),
    (["--workers", "0"], "error: --workers: expected an integer >= 1, got 0"),
    (["--policy", "tightest"], "error: --policy: unknown policy 'tightest'"),
    (["--at", "noon"], "error: --at: expected a time in seconds >= 0 or 'peak', got 'noon'"),
    (["--at", "inf"], "error: --at: expected a time in seconds >= 0 or 'peak', got 'inf'"),
    (["--trace", "nope"], "error: --trace nope: unknown trace 'nope'"),
])
def test_bad_options_are_one_line_and_exit_code_2(loaders, args, says):
    result = _invoke("compaction", *(["--trace", "tiny"] + args))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(says)


def test_the_real_loaders_name_a_missing_file():
    result = _invoke("compaction", "--trace", "alibaba-batch", "--path", "/nonexistent/batch_task.csv")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "/nonexistent/batch_task.csv" in lines[0]
