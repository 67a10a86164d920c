"""``corral scheduler --profile batch`` as its own process against a real ``corral master`` on 127.0.0.1
(a cell configuration with an external profile); ``corral schedulers`` and a bad ``schedulers:`` entry."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from corral.cli.cellconfig import CellConfigError, load_cell_config
from corral.cli.main import app
from tests.e2e.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_a_bad_profile_in_the_cell_configuration_is_one_line_naming_its_place(tmp_path):
    path = tmp_path / "cell.yaml"
    path.write_text(yaml.safe_dump({"schedulers": [{"name": "batch", "bands": ["gold"]}]}))
    with pytest.raises(CellConfigError) as err:
        load_cell_config(path)
    assert str(err.value).startswith(f"{path}: schedulers[0].bands: expected a list of ")
    result = CliRunner().invoke(app, ["master", "--config", str(path)])
    assert result.exit_code == 2 and "schedulers[0].bands" in result.output


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.mark.slow
def test_corral_scheduler_as_its_own_process_places_its_profiles_jobs_through_a_real_master(tmp_path):
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump({
        "t-ops": {"user": "ops", "role": "admin"}, "t-sched": {"user": "batch-scheduler", "role": "scheduler"}}))
    (tmp_path / "cell.yaml").write_text(yaml.safe_dump({
        "store": "sqlite://state.db", "tokens": "tokens.yaml", "listen": "127.0.0.1:0", "write-config": False,
        "poll-interval": 30.0,  # no agents here: machines stay up for the test's length
        "schedulers": [{"name": "batch", "policy": "best-fit", "bands": ["batch"], "external": True}]}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "CORRAL_CONFIG": str(tmp_path / "c.yaml")}
    env.pop("CORRAL_ADDR", None)
    env.pop("CORRAL_TOKEN", None)
    master_out = tmp_path / "master.out"
    procs = []
    with open(master_out, "wb") as out:
        master = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "master", "--config",
                                   str(tmp_path / "cell.yaml")], stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env, cwd=tmp_path, start_new_session=True)
    procs.append(master)
    try:
        line = wait_until(lambda: re.search(rb"serving (http://127\.0\.0\.1:\d+) \((.*)\)\n", master_out.read_bytes()),
                     40, "the master to say where it serves")
        url = line.group(1).decode()
        assert b"schedulers batch (external), default" in line.group(2)
        ops = {"Authorization": "Bearer t-ops"}
        with httpx.Client(base_url=url + "/api/v1", timeout=10.0, headers=ops) as c:
            for name, cpu in (("m1", "4"), ("m2", "8")):
                c.post("/machines", json={"name": name, "address": "http://127.0.0.1:9",
                                          "capacity": {"cpu": cpu, "memory": "8Gi"}}).raise_for_status()
            c.post("/jobs", json={"name": "crunch", "user": "ops", "tasks": 3, "priority": 2,
                                  "resources": {"cpu": "1", "memory": "1Gi"}}).raise_for_status()
            time.sleep(1.0)  # the master's own rounds run meanwhile, and leave the batch profile's job alone
            assert c.get("/jobs/crunch").json()["task_states"]["pending"] == 3
            sched_out = tmp_path / "scheduler.out"
            with open(sched_out, "wb") as out:
                scheduler = subprocess.Popen(
                    [sys.executable, "-m", "corral.cli.main", "scheduler", "--profile", "batch", "--master", url,
                     "--token", "t-sched", "--interval", "0.2"], stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=env, cwd=tmp_path, start_new_session=True)
            procs.append(scheduler)
            wait_until(lambda: c.get("/jobs/crunch").json()["task_states"]["starting"] == 3, 40,
                  "the external scheduler to place the job's three tasks")
            machines = {t["machine"] for t in c.get("/jobs/crunch/tasks").json()["tasks"]}
            assert machines == {"m1"}  # best-fit, the profile's policy: packed on the smaller machine
            listed = subprocess.run([sys.executable, "-m", "corral.cli.main", "schedulers", "-o", "json"],
                                    env={**env, "CORRAL_ADDR": url, "CORRAL_TOKEN": "t-ops"}, capture_output=True,
                                    timeout=60, text=True)
            assert listed.returncode == 0, listed.stderr
            rows = {r["name"]: r for r in json.loads(listed.stdout)["schedulers"]}
            assert rows["batch"]["external"] and rows["batch"]["placements"] == 3 and rows["batch"]["jobs"] == 1
            assert rows["default"]["placements"] == 0
            text = subprocess.run([sys.executable, "-m", "corral.cli.main", "schedulers"],
                                  env={**env, "CORRAL_ADDR": url, "CORRAL_TOKEN": "t-ops"}, capture_output=True,
                                  timeout=60, text=True).stdout.splitlines()
            assert text[0].split()[:3] == ["PROFILE", "WHERE", "POLICY"]
            assert text[1].split()[:3] == ["batch", "external", "best-fit"] and text[1].split()[6] == "3"
        _stop(scheduler)
        assert scheduler.returncode == 0, sched_out.read_text()
        last = json.loads(sched_out.read_text().strip().splitlines()[-1])
        assert last["profile"] == "batch" and last["placed"] == 3 and last["rounds"] >= 1
    finally:
        for proc in reversed(procs):
            _stop(proc)
    assert master.returncode == 0, master_out.read_text()[-2000:]
