"""The CLI's operator conveniences against a real master: output formats as a parser choice, YAML,
wide tables, --version, shell completion, YAML errors with line and column, did-you-mean, events."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from corral.cli.main import app
from tests.cli.test_client import master  # noqa: F401 (the fixture)

runner = CliRunner()


def corral(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def spec_file(tmp_path, text: str) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return str(path)


WEB = "name: web\ntasks: 2\nresources:\n  cpu: 250m\n  memory: 64Mi\ncommand: 'true'\n"


@pytest.mark.parametrize("command", ["jobs", "tasks", "status", "why", "submit", "kill", "update", "machines",
                                     "events"])
def test_every_client_command_lists_the_output_choices_in_its_help(command):
    code, out, _ = corral(command, "--help")
    assert code == 0 and "text|json|yaml|wide" in out


def test_an_output_format_not_listed_is_refused_by_the_parser_in_one_line():
    code, _, err = corral("jobs", "-o", "xml")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("corral jobs: ") and "'xml' is not one of 'text', 'json', 'yaml', 'wide'" in err


def test_version_and_shell_completion():
    code, out, _ = corral("--version")
    assert code == 0 and out.startswith("corral ") and out.split()[1][0].isdigit()
    code, out, _ = corral("--help")
    assert "--install-completion" in out and "--show-completion" in out


def test_yaml_and_wide_outputs_and_a_spec_without_user_is_the_token_users(master, tmp_path):  # noqa: F811
    code, out, err = corral("submit", spec_file(tmp_path, WEB), "-o", "yaml")
    assert code == 0, err
    assert yaml.safe_load(out)["job"] == "web.alice"
    code, out, _ = corral("jobs", "-o", "wide")
    assert code == 0 and out.splitlines()[0].split()[:6] == ["JOB", "STATE", "PRIO", "TASKS", "PEND/RUN/ENDED", "USER"]
    code, out, _ = corral("tasks", "-o", "wide")
    assert code == 0 and "RESTARTS" in out.splitlines()[0]
    code, out, _ = corral("status", "web", "-o", "yaml")
    assert code == 0 and yaml.safe_load(out)["user"] == "alice"


def test_a_yaml_error_names_its_line_and_column(master, tmp_path):  # noqa: F811
    path = spec_file(tmp_path, "name: web\nresources:\n  cpu: [1\n  memory: 1Gi\n")
    code, _, err = corral("submit", path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{path}:4:" in err and "not valid YAML" in err


def test_an_unknown_field_names_the_closest_known_one(master, tmp_path):  # noqa: F811
    code, _, err = corral("submit", spec_file(tmp_path, WEB + "prioirty: 3\n"))
    assert code == 2 and "prioirty: unknown field; did you mean `priority`?" in err


def test_corral_events_shows_the_jobs_history_oldest_first(master, tmp_path):  # noqa: F811
    assert corral("submit", spec_file(tmp_path, WEB))[0] == 0
    code, out, err = corral("events", "--job", "web")
    assert code == 0, err
    assert out.splitlines()[0].split()[1:3] == ["job_submitted", "web.alice"]
    code, out, _ = corral("events", "--job", "web", "-o", "json")
    assert code == 0 and [e["type"] for e in json.loads(out)["events"]][0] == "job_submitted"
    code, _, err = corral("events", "--type", "nonsense")
    assert code == 2 and "type: expected one or more of" in err


def test_no_address_says_how_to_start_a_cell_with_corral_up(tmp_path, monkeypatch):
    monkeypatch.delenv("CORRAL_ADDR", raising=False)
    monkeypatch.delenv("CORRAL_TOKEN", raising=False)
    monkeypatch.setenv("CORRAL_CONFIG", str(tmp_path / "none.yaml"))
    code, _, err = corral("jobs")
    assert code == 2 and "`corral up`" in err and "`corral master`" in err
