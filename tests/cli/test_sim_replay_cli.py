"""``corral sim replay`` end to end: outputs, determinism, one-line errors."""

import json

from typer.testing import CliRunner

from corral.cli.main import app
from corral.sim.traces import synthetic_trace, write_trace

runner = CliRunner()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_replay_prints_one_json_line_writes_csv_and_plots_and_is_deterministic(tmp_path):
    args = ["sim", "replay", "--trace", "synthetic:machines=20,tasks=600,hours=2", "--seed", "4", "--json"]
    first = runner.invoke(app, args + ["--out", str(tmp_path / "a")])
    second = runner.invoke(app, args + ["--out", str(tmp_path / "b")])
    assert first.exit_code == 0, first.output
    a, b = last_json(first.output), last_json(second.output)
    assert a["experiment"] == "replay" and a["tasks"] == 600 and a["machines"] == 20
    assert a["placements"] > 0 and a["seconds"] > 0 and a["events_per_s"] > 0
    for key in ("seconds", "events_per_s"):
        a.pop(key), b.pop(key)
    assert a == b
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["replay_synthetic_hybrid_4.json", "replay_synthetic_hybrid_4_delays.csv",
                     "replay_synthetic_hybrid_4_pending_delay.png", "replay_synthetic_hybrid_4_rounds.csv",
                     "replay_synthetic_hybrid_4_samples.csv", "replay_synthetic_hybrid_4_utilization.png"]
    rows = (tmp_path / "a" / "replay_synthetic_hybrid_4_samples.csv").read_text().splitlines()
    assert rows[0].startswith("t,alloc_cpu,alloc_memory") and len(rows) > 100
    assert (tmp_path / "a" / "replay_synthetic_hybrid_4_utilization.png").read_bytes()[:4] == b"\x89PNG"


def test_replay_of_a_native_trace_file(tmp_path):
    path = tmp_path / "small.jsonl"
    write_trace(synthetic_trace(machines=10, tasks=200, hours=1.0, seed=1), path)
    result = runner.invoke(app, ["sim", "replay", "--trace", str(path), "--policy", "best-fit", "--json",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = last_json(result.output)
    assert summary["policy"] == "best-fit" and summary["tasks"] == 200


def test_a_missing_trace_file_is_one_line_naming_it_and_exit_2(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = runner.invoke(app, ["sim", "replay", "--trace", str(missing), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "error:" in result.output and str(missing) in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_a_malformed_trace_line_is_named_with_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    write_trace(synthetic_trace(machines=3, tasks=10, hours=1.0, seed=1), path)
    lines = path.read_text().splitlines()
    lines[2] = '{"machine": {"name": "m-x", "cpu": "lots"}}'
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["sim", "replay", "--trace", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{path}:3:" in result.output.replace("\n", "") and "Traceback" not in result.output


def test_unknown_policy_and_trace_names_exit_2(tmp_path):
    result = runner.invoke(app, ["sim", "replay", "--policy", "tightest", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--policy" in result.output
    result = runner.invoke(app, ["sim", "replay", "--trace", "google2019", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown trace" in result.output
