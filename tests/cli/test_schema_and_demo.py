import json

from typer.testing import CliRunner

from corral.cli.main import app

runner = CliRunner()


def test_the_schema_command_prints_the_job_spec_json_schema():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    job, allocset = schema["$defs"]["JobSpec"], schema["$defs"]["AllocSetSpec"]
    assert schema["then"] == {"$ref": "#/$defs/AllocSetSpec"} and schema["else"] == {"$ref": "#/$defs/JobSpec"}
    assert set(job["required"]) == {"name", "resources"}  # a spec without user is its submitter's
    assert set(allocset["required"]) == {"kind", "name", "resources"}
    assert "priority" in job["properties"] and "alloc" in job["properties"] and "count" in allocset["properties"]


def test_the_demo_shows_placements_preemptions_and_pending_reasons():
    result = runner.invoke(app, ["demo", "--machines", "60", "--tasks", "600"])
    assert result.exit_code == 0, result.output
    assert "placements (first 8 of pass 2)" in result.output
    assert "preemptions" in result.output
    assert "machines are available" in result.output


def test_the_demo_refuses_an_unknown_policy_with_a_one_line_error():
    result = runner.invoke(app, ["demo", "--policy", "tightest"])
    assert result.exit_code == 2
    assert "--policy" in result.output and "unknown policy" in result.output
