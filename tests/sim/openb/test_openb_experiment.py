"""The experiment end to end on a tiny trace folder, and the ``corral sim openb`` command."""

import json

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.cli.sim import SeedError, parse_seeds
from corral.sim.openb.experiment import run_experiment
from corral.sim.openb.policies import OPENB_POLICIES

NODES = "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(
    f"n{i},32000,131072,{g},{m}\n" for i, (g, m) in enumerate([(8, "G2"), (2, "T4"), (4, "V100"), (2, "T4")] * 3)
)
PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n" + "".join(
    f"p{i:03d},{c},1024,{n},{g},{s}\n"
    for i, (c, n, g, s) in enumerate([(4000, 1, 500, ""), (8000, 1, 1000, ""), (2000, 0, 0, ""),
                                      (16000, 4, 1000, ""), (4000, 1, 250, "T4"), (6000, 2, 1000, "")] * 6)
)


@pytest.fixture
def traces(tmp_path):
    (tmp_path / "openb_node_list_gpu_node.csv").write_text(NODES)
    (tmp_path / "openb_pod_list_tiny.csv").write_text(PODS)
    return tmp_path


@pytest.mark.parametrize("policy", sorted(OPENB_POLICIES))
def test_every_policy_fills_the_tiny_cell_without_overcommitting_and_reports_the_curve(traces, policy):
    r = run_experiment(traces, "tiny", policy, 42)
    assert r.placed + r.failed > 36  # tuned up to 130 % of 48 GPUs
    assert r.failed > 0  # 130 % cannot all fit
    assert 50 <= r.alloc[130] <= 100
    assert any(r.alloc[x] is not None and abs(r.alloc[x] - 50) < 6 for x in range(45, 56))
    assert r.cpu_only_placed > 0


def test_the_same_seed_replays_the_same_run(traces):
    a, b = run_experiment(traces, "tiny", "fgd", 3), run_experiment(traces, "tiny", "fgd", 3)
    assert (a.alloc, a.placed, a.frag_ratio) == (b.alloc, b.placed, b.frag_ratio)


@pytest.mark.parametrize("case, text, seeds", [
    ("a range includes both ends", "42-44", [42, 43, 44]),
    ("a single seed", "7", [7]),
    ("a list", "1,5", [1, 5]),
])
def test_seed_lists(case, text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["44-42", "abc", "", "-3"])
def test_bad_seed_lists_are_errors(text):
    with pytest.raises(SeedError):
        parse_seeds(text)


def test_the_command_prints_one_json_object_on_its_last_line(traces):
    out = CliRunner().invoke(app, ["sim", "openb", "--trace-dir", str(traces), "--workload", "openb_pod_list_tiny",
                                   "--policy", "fgd", "--seeds", "42-43", "--json", "--processes", "1"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["workload"] == "tiny" and data["policy"] == "fgd" and data["seeds"] == [42, 43]
    assert set(data["alloc"]) == {"50", "70", "90", "100", "110", "120", "130"}
    assert len(data["alloc"]["130"]["per_seed"]) == 2
    assert {"placed", "failed", "cpu_only_placed", "seconds_per_run", "frag_ratio"} <= set(data)


@pytest.mark.parametrize("case, args, message", [
    ("an unknown workload", ["--workload", "nosuch"], "--workload"),
    ("an unknown policy", ["--policy", "nosuch"], "--policy"),
    ("a backwards seed range", ["--seeds", "9-1"], "--seeds"),
])
def test_bad_arguments_exit_2_with_one_line_and_no_traceback(traces, case, args, message):
    out = CliRunner().invoke(app, ["sim", "openb", "--trace-dir", str(traces), *args])
    assert out.exit_code == 2
    assert message in out.output and "Traceback" not in out.output


def test_compare_runs_every_workload_and_policy_writes_the_figure_and_reuses_cached_runs(tmp_path):
    from corral.sim.openb.loader import EXTRA_WORKLOADS, PAPER_WORKLOADS

    traces = tmp_path / "csv"
    traces.mkdir()
    (traces / "openb_node_list_gpu_node.csv").write_text(NODES)
    for name in PAPER_WORKLOADS + EXTRA_WORKLOADS:
        (traces / f"openb_pod_list_{name}.csv").write_text(PODS)
    figure, results = tmp_path / "curves.png", tmp_path / "runs.jsonl"
    args = ["sim", "openb", "--compare", "--trace-dir", str(traces), "--seeds", "42", "--processes", "1",
            "--figure", str(figure), "--results", str(results), "--json"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["runs"] == len(PAPER_WORKLOADS) * 7 + len(EXTRA_WORKLOADS)
    assert figure.stat().st_size > 10_000
    assert len(results.read_text().splitlines()) == summary["runs"]
    again = CliRunner().invoke(app, args)  # everything cached: nothing runs again
    assert again.exit_code == 0
    assert len(results.read_text().splitlines()) == summary["runs"]
