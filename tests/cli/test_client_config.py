"""``corral master`` writes the CLI's config and a tokens file; the CLI finds its master through them."""

from __future__ import annotations

import json
import subprocess
import sys

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
