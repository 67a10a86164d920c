"""The user commands against a real master over HTTP (in-process CLI runner, master in a thread)."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from typer.testing import CliRunner

from corral.cli.main import app
from corral.master.auth import Tokens
from corral.master.server import MasterServer, build_master

runner = CliRunner()


@pytest.fixture
def master(tmp_path, monkeypatch):
    srv = MasterServer(build_master(f"sqlite:///{tmp_path}/s.db", validate=True, schedule_interval_s=0.05),
                       Tokens.parse({"t-alice": {"user": "alice"}, "t-ops": {"user": "ops", "role": "admin"}})).start()
    monkeypatch.setenv("CORRAL_ADDR", srv.url)
    monkeypatch.setenv("CORRAL_TOKEN", "t-alice")
    monkeypatch.setenv("CORRAL_CONFIG", str(tmp_path / "none.yaml"))
    try:
        yield srv
    finally:
        srv.stop()


def corral(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def job(**fields):
    return {"name": "web", "tasks": 2, "resources": {"cpu": "1", "memory": "1Gi"}, **fields}


def until(fn, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not fn():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_submit_jobs_status_why_kill_in_text_and_json(master, tmp_path, monkeypatch):
    spec = write(tmp_path, "web.yaml", job())
    code, out, _ = corral("submit", spec)
    assert code == 0 and out.strip() == "web.alice: pending (2 tasks)"
    code, out, _ = corral("jobs", "--output", "json")
    assert code == 0 and json.loads(out)["jobs"][0]["job"] == "web.alice"
    code, out, _ = corral("jobs")
    assert "web.alice" in out and "PEND/RUN/ENDED" in out and "2/0/0" in out
    code, out, _ = corral("why", "web/1")
    assert code == 0 and out.startswith("1.web.alice.local (pending): 0/0 machines are available")
    code, out, _ = corral("why", "web")
    assert code == 0 and out.startswith("web.alice tasks 0,1 (2 pending): 0/0 machines are available")
    code, out, _ = corral("why", "web", "-o", "json")
    assert json.loads(out)["pending"][0]["tasks"] == [0, 1]
    monkeypatch.setenv("CORRAL_TOKEN", "t-ops")
    assert corral("machines")[0] == 0
    from corral.master.commands import RegisterMachine
    master.master.execute(RegisterMachine("m1", {"cpu": "8", "memory": "16Gi"}, attributes={"rack": "r1"}))
    code, out, _ = corral("machines", "-l", "rack=r1", "-o", "json")
    assert [m["name"] for m in json.loads(out)["machines"]] == ["m1"]
    monkeypatch.setenv("CORRAL_TOKEN", "t-alice")
    until(lambda: json.loads(corral("status", "web", "-o", "json")[1])["state"] == "running")
    code, out, _ = corral("status", "web")
    assert "job web.alice: running" in out and "m1" in out
    code, out, _ = corral("why", "web.alice/0", "-o", "json")
    assert json.loads(out)["state"] == "running"
    code, out, _ = corral("tasks", "--job", "web", "--state", "running")
    assert code == 0 and "0.web.alice.local" in out and "1.web.alice.local" in out
    code, out, _ = corral("tasks", "-m", "m1", "-o", "json")
    assert json.loads(out)["count"] == 2
    code, out, _ = corral("kill", "web")
    assert code == 0 and out.strip() in ("web.alice: dead", "web.alice: killed")  # "killed" once end states land


def test_update_changes_priority_in_place(master, tmp_path):
    corral("submit", write(tmp_path, "a.yaml", job()))
    code, out, _ = corral("update", write(tmp_path, "b.yaml", job(priority=5)), "-o", "json")
    assert code == 0 and json.loads(out)["changed"] == ["priority"]
    code, out, _ = corral("update", write(tmp_path, "c.yaml", job(priority=5, resources={"cpu": "2", "memory": "1Gi"})))
    assert code == 0 and "changed resources (rolling restart)" in out


BAD = [
    ("a spec file that does not exist", ["submit", "/nonexistent/job.yaml"], "cannot read"),
    ("a spec that is not YAML", ["submit", "@bad"], "not valid YAML"),
    ("a spec with a bad field", ["submit", "@field"], "resources.memory"),
    ("a spec that is a list", ["submit", "@list"], "expected a mapping"),
    ("an unknown job", ["status", "nosuch"], "no job nosuch.alice"),
    ("an unknown output format", ["jobs", "--output", "xml"], "--output"),
    ("a bad state filter", ["jobs", "--state", "zombie"], "state: expected one of"),
    ("a bad task reference", ["why", "web/x"], "numeric index"),
    ("a bad label", ["machines", "--label", "rack"], "expected key=value"),
    ("killing a job that does not exist", ["kill", "ghost"], "no job ghost.alice"),
    ("an update without a name", ["update", "@noname"], "name: required field is missing"),
]


@pytest.mark.parametrize("what,args,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_exit_code_2(master, tmp_path, what, args, expected):
    files = {"@bad": "name: [unclosed", "@field": yaml.safe_dump(job(resources={"cpu": 1, "memory": "12 parsecs"})),
             "@list": "- 1\n- 2\n", "@noname": yaml.safe_dump({"tasks": 1})}
    args = [write(tmp_path, "x.yaml", files[a]) if a in files else a for a in args]
    code, out, err = corral(*args)
    assert code == 2, (out, err)
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_unreachable_master_is_exit_1_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("CORRAL_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("CORRAL_TOKEN", "x")
    code, _, err = corral("jobs")
    assert code == 1 and "cannot reach the master" in err and len(err.strip().splitlines()) == 1


def test_without_address_or_config_the_error_says_what_to_set(monkeypatch, tmp_path):
    monkeypatch.delenv("CORRAL_ADDR", raising=False)
    monkeypatch.delenv("CORRAL_TOKEN", raising=False)
    monkeypatch.setenv("CORRAL_CONFIG", str(tmp_path / "missing.yaml"))
    code, _, err = corral("jobs")
    assert code == 2 and "CORRAL_ADDR" in err


def test_an_address_without_a_scheme_means_http(master, monkeypatch):
    monkeypatch.setenv("CORRAL_ADDR", master.url.removeprefix("http://"))
    code, out, err = corral("jobs", "-o", "json")
    assert code == 0, err


COUNTS = [
    ("the master's own task states", {"pending": 1, "running": 2, "dead": 3}, (1, 2, 3)),
    ("the words users see fold into three columns",
     {"pending": 1, "starting": 1, "running": 2, "restarting": 1, "succeeded": 2, "failed": 1, "killed": 1}, (1, 4, 4)),
    ("a key the CLI does not know is left out, not a crash", {"pending": 1, "hibernating": 5}, (1, 0, 0)),
    ("no task_states at all", None, (0, 0, 0)),
]


@pytest.mark.parametrize("what,states,expected", COUNTS, ids=[c[0] for c in COUNTS])
def test_the_jobs_table_counts_pending_running_and_ended_tasks(what, states, expected):
    from corral.cli.client import task_counts

    assert task_counts({"job": "x", **({"task_states": states} if states is not None else {})}) == expected


NOTES = [
    ("the master's detail line when it gives one",
     {"state": "running", "word": "restarting",
      "detail": 'restarting: 4 restarts, next try in 8 s, last: exit 127 "sh: foo: not found"', "restarts": 4},
     "restarting", 'restarting: 4 restarts, next try in 8 s, last: exit 127 "sh: foo: not found"'),
    ("restarts and the last exit when there is no detail line",
     {"state": "running", "restarts": 2, "last_exit": "exit 1"}, "running", "running: 2 restarts, last: exit 1"),
    ("a pending task's reason", {"state": "pending", "reason": "0/3 machines are available"},
     "pending", "0/3 machines are available"),
    ("an older master's task with neither", {"state": "dead"}, "dead", ""),
]


@pytest.mark.parametrize("what,task,word,note", NOTES, ids=[n[0] for n in NOTES])
def test_a_task_line_shows_its_word_and_detail(what, task, word, note):
    from corral.cli.client import task_note, task_word

    assert (task_word(task), task_note(task)) == (word, note)


@pytest.mark.parametrize("state", ["pending", "running", "succeeded", "failed", "killed", "dead"])
def test_jobs_state_accepts_every_job_word_and_dead_for_any_ended_job(master, state):
    code, out, err = corral("jobs", "--state", state, "-o", "json")
    assert code == 0, err


def test_the_job_words_the_cli_accepts_are_the_models_and_its_aliases():
    from corral.cli.lists import JOB_STATE_WORDS
    from corral.model.job import ENDED_JOB_STATES, JOB_STATE_ALIASES, JobState

    model = {s.value for s in JobState if s in ENDED_JOB_STATES or s in (JobState.PENDING, JobState.RUNNING)}
    assert set(JOB_STATE_WORDS) == model | set(JOB_STATE_ALIASES)


def test_shares_lists_users_with_their_dominant_share_in_text_and_json(master, tmp_path):
    assert corral("submit", write(tmp_path, "web.yaml", job()))[0] == 0
    code, out, _ = corral("shares", "--output", "json")
    data = json.loads(out)
    assert code == 0 and data["order"] == "drf"
    [alice] = [u for u in data["users"] if u["name"] == "alice"]
    assert (alice["weight"], alice["pending"] + alice["running"]) == (1.0, 2)
    code, out, _ = corral("shares")
    assert code == 0 and "queue order: drf" in out and "DOMINANT SHARE" in out and "alice" in out
