"""`corral plan` and `corral submit --dry-run` against a real master: what would happen, nothing stored."""

from __future__ import annotations

import json

from corral.master.commands import RegisterMachine
from tests.cli.test_client import corral, job, master, until, write  # noqa: F401 (the fixture)


def register(srv, name: str, cpu: str) -> None:
    srv.master.execute(RegisterMachine(name, {"cpu": cpu, "memory": "8Gi"}, address="http://127.0.0.2:9"))


def test_plan_of_a_new_job_shows_placements_and_pending_and_stores_nothing(master, tmp_path):  # noqa: F811
    register(master, "m1", "1")
    spec = write(tmp_path, "web.yaml", job(tasks=3))
    code, out, err = corral("plan", spec)
    assert code == 0, err
    assert "web.alice: admitted; 1 tasks would be placed, 0 preempted, 2 stay pending" in out
    assert "m1" in out and "insufficient cpu" in out and "(dry run: nothing was submitted)" in out
    code, out, _ = corral("submit", spec, "--dry-run", "-o", "json")
    assert code == 0 and json.loads(out)["dry_run"] is True
    code, out, _ = corral("jobs", "-o", "json")
    assert json.loads(out)["jobs"] == []


def test_plan_of_a_live_job_is_its_update_in_waves(master, tmp_path):  # noqa: F811
    register(master, "m1", "8")
    spec = write(tmp_path, "web.yaml", job(tasks=3))
    assert corral("submit", spec)[0] == 0
    until(lambda: json.loads(corral("status", "web", "-o", "json")[1])["state"] == "running")
    bigger = write(tmp_path, "web2.yaml", job(tasks=3, resources={"cpu": "1", "memory": "2Gi"}))
    code, out, err = corral("plan", bigger, "--max-unavailable", "2")
    assert code == 0, err
    assert "restarting 3 tasks in 2 waves" in out and "wave 1: 0.web.alice.local, 1.web.alice.local" in out
    assert json.loads(corral("status", "web", "-o", "json")[1])["version"] == 1
    assert corral("plan", bigger, "--max-unavailable", "0")[0] == 2


def test_plan_of_a_bad_spec_is_the_submit_error_naming_the_field(master, tmp_path):  # noqa: F811
    code, _, err = corral("plan", write(tmp_path, "bad.yaml", job(tasks=-2)))
    assert code == 2 and "tasks" in err and len(err.strip().splitlines()) == 1
