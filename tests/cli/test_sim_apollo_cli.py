"""``corral sim apollo`` end to end: the last JSON line, its files, and one-line errors."""

import json

from typer.testing import CliRunner

from corral.cli.main import app

runner = CliRunner()
KEYS = ("job_completion_p50_s", "job_completion_p90_s", "task_wait_p90_s", "extra_cpu_pct",
        "corrections_triggered", "corrections_succeeded", "seconds")


def test_apollo_on_the_first_jobs_of_alibaba_batch(tmp_path):
    csv_path, plot = tmp_path / "v.csv", tmp_path / "cdf.png"
    result = runner.invoke(app, ["sim", "apollo", "--trace", "alibaba-batch", "--limit-jobs", "40", "--machines", "20",
                                 "--out", str(tmp_path / "out"), "--csv", str(csv_path), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["jobs"] == 40 and last["machines"] == 20 and last["stragglers"] == "0.05:5" and last["seconds"] > 0
    for variant in ("baseline", "estimates", "corrections", "apollo"):
        assert all(k in last[variant] for k in KEYS)
    assert last["baseline"]["corrections_triggered"] == 0 and last["baseline"]["extra_cpu_pct"] == 0.0
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("variant,job_completion_p50_s") and len(rows) == 5
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_bad_options_are_one_line_and_exit_2():
    for args, word in ((["--stragglers", "2:5"], "--stragglers"), (["--stragglers", "0.1"], "--stragglers"),
                       (["--variants", "baseline,nope"], "--variants"), (["--trace", "openb"], "--trace")):
        result = runner.invoke(app, ["sim", "apollo", *args])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and word in lines[0] and "Traceback" not in result.output
