"""``corral master`` writes the CLI's config and a tokens file; the CLI finds its master through them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.master.procs import MasterProcess, child_env


def run_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_the_master_writes_config_and_tokens_for_the_local_user(tmp_path):
    config = tmp_path / "config.yaml"
    env = {k: v for k, v in child_env().items() if k not in ("CORRAL_ADDR", "CORRAL_TOKEN")}
    env["CORRAL_CONFIG"] = str(config)
    proc = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "master", "--store",
                             f"sqlite:///{tmp_path}/m/state.db", "--port", "0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert "serving http://127.0.0.1:" in line and str(config) in line, line
        settings = yaml.safe_load(config.read_text())
        tokens = yaml.safe_load((tmp_path / "m" / "tokens.yaml").read_text())
        assert tokens[settings["token"]]["role"] == "admin"
        assert "agent" in [e["role"] for e in tokens.values()]
        spec = tmp_path / "job.yaml"
        spec.write_text(yaml.safe_dump({"name": "batch", "user": "alice", "resources": {"cpu": 1, "memory": "1Gi"}}))
        result = run_cli(env, "submit", str(spec), "--output", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["job"] == "batch.alice"
        result = run_cli(env, "status", "batch.alice")
        assert result.returncode == 0 and "job batch.alice: pending" in result.stdout
    finally:
        proc.terminate()
        proc.wait(15)
    assert proc.returncode == 0


def test_a_bad_store_url_is_one_line_and_exit_code_2(tmp_path):
    result = run_cli(child_env(CORRAL_CONFIG=str(tmp_path / "c.yaml")), "master", "--store", "mysql://x",
                     "--port", "0", "--tokens", str(tmp_path / "t.yaml"))
    assert result.returncode == 2 and "expected a store URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_master_process_helper_serves_on_localhost(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"t": {"user": "ops", "role": "admin"}}))
    master = MasterProcess(f"sqlite:///{tmp_path}/s.db", tokens, tmp_path).start()
    try:
        assert master.url.startswith("http://127.0.0.1:")
    finally:
        master.stop()
    assert master.proc.returncode == 0


CONFIG_FILES = [
    ("the JSON form corral writes", '{"addr": "127.0.0.1:7100", "token": "abc"}', ("http://127.0.0.1:7100", "abc")),
    ("the YAML form earlier versions wrote", "addr: http://127.0.0.1:7100\ntoken: abc\n",
     ("http://127.0.0.1:7100", "abc")),
    ("a YAML file with comments", "# mine\naddr: http://h:1  # the master\ntoken: 'x y'\n", ("http://h:1", "x y")),
]


@pytest.mark.parametrize("what,text,expected", CONFIG_FILES, ids=[c[0] for c in CONFIG_FILES])
def test_the_cli_config_is_read_in_either_form(tmp_path, monkeypatch, what, text, expected):
    from corral.cli.config import client_settings

    path = tmp_path / "config.yaml"
    path.write_text(text)
    monkeypatch.setenv("CORRAL_CONFIG", str(path))
    monkeypatch.delenv("CORRAL_ADDR", raising=False)
    monkeypatch.delenv("CORRAL_TOKEN", raising=False)
    assert client_settings() == expected


def test_a_written_config_is_yaml_and_private(tmp_path, monkeypatch):
    from corral.cli.config import read_config, write_config

    monkeypatch.setenv("CORRAL_CONFIG", str(tmp_path / "sub" / "config.yaml"))
    path = write_config("http://127.0.0.1:1", "tok")
    assert yaml.safe_load(path.read_text()) == read_config() == {"addr": "http://127.0.0.1:1", "token": "tok"}
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_config_without_a_token_says_what_to_set_and_how_to_start_a_cell(tmp_path, monkeypatch):
    from corral.cli.config import ClientConfigError, client_settings

    (tmp_path / "c.yaml").write_text('{"addr": "http://h:1"}')
    monkeypatch.setenv("CORRAL_CONFIG", str(tmp_path / "c.yaml"))
    monkeypatch.delenv("CORRAL_ADDR", raising=False)
    monkeypatch.delenv("CORRAL_TOKEN", raising=False)
    with pytest.raises(ClientConfigError, match="CORRAL_TOKEN.*`corral up`.*`corral master`"):
        client_settings()
