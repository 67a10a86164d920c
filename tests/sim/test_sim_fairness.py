"""``corral sim fairness``: the DRF paper's cell over time, Jain's index, determinism, the CLI."""

import json

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.sim.fairness import fairness, jain
from corral.sim.replay import ReplayConfig
from corral.sim.trace import Trace, TraceJob, TraceMachine, sort_jobs

GiB = 2**30
runner = CliRunner()


def paper_trace():
    # 9 CPUs, 18 GiB; A's tasks <1 CPU, 4 GiB>, B's <3 CPUs, 1 GiB>, both more than fit, for 1000 s.
    jobs = [TraceJob("a", "alice", 0.0, 1000, 4 * GiB, tasks=10, duration=1000.0),
            TraceJob("b", "bob", 0.0, 3000, 1 * GiB, tasks=10, duration=1000.0)]
    return Trace("paper", [TraceMachine("m0", 9000, 18 * GiB)], sort_jobs(jobs))


def test_jains_index_is_one_for_equal_shares_and_one_over_n_for_one_holder():
    assert jain([0.3, 0.3, 0.3]) == pytest.approx(1.0)
    assert jain([0.9, 0.0, 0.0]) == pytest.approx(1 / 3)
    assert jain([0.5]) is None and jain([0.0, 0.0]) is None


def test_drf_equalises_dominant_shares_on_the_papers_cell_and_round_robin_does_not():
    summary, runs = fairness(paper_trace(), ["drf", "round-robin"], ReplayConfig(until=500.0, sample_interval_s=50.0))
    drf, rr = summary["orders"]["drf"], summary["orders"]["round-robin"]
    # DRF: A runs 3 (12/18 of memory), B 2 (6/9 of CPU): both at 2/3.
    assert drf["per_user"]["alice"]["share_peak"] == pytest.approx(2 / 3, abs=1e-6)
    assert drf["per_user"]["bob"]["share_peak"] == pytest.approx(2 / 3, abs=1e-6)
    assert drf["jain_mean"] == pytest.approx(1.0)
    # Round-robin: A's turn takes 4 (16/18), B gets 1 (3/9).
    assert rr["per_user"]["alice"]["share_peak"] == pytest.approx(16 / 18, abs=1e-6)
    assert rr["jain_mean"] == pytest.approx((16 / 18 + 1 / 3) ** 2 / (2 * ((16 / 18) ** 2 + (1 / 3) ** 2)), abs=1e-6)
    assert drf["contended_samples"] == rr["contended_samples"] > 0


def test_the_summary_is_the_same_for_the_same_trace_and_seed_but_for_seconds():
    config = ReplayConfig(until=500.0, sample_interval_s=50.0)
    one, _ = fairness(paper_trace(), ["drf"], config)
    two, _ = fairness(paper_trace(), ["drf"], config)
    one.pop("seconds"), two.pop("seconds")
    assert one == two


def test_the_command_prints_its_table_writes_its_files_and_ends_with_one_json_line(tmp_path):
    args = ["sim", "fairness", "--trace", "synthetic:machines=10,tasks=300,hours=2", "--until", "3600",
            "--out", str(tmp_path), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["experiment"] == "fairness" and "seconds" in last and set(last["orders"]) == {"drf", "round-robin"}
    assert "Jain mean" in result.stdout
    names = {p.name for p in tmp_path.iterdir()}
    assert {"fairness_synthetic_0.json", "fairness_synthetic_0_shares.csv", "fairness_synthetic_0_user_delays.csv",
            "fairness_synthetic_0.png"} <= names
    again = runner.invoke(app, args[:-1])
    assert json.loads(again.stdout.strip().splitlines()[-1]).keys() == {"experiment", "seconds"}


def test_a_bad_order_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["sim", "fairness", "--order", "drf,fifo", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--order: expected distinct names among drf, round-robin" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
