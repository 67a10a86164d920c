"""The examples under examples/ are valid and admitted by a master using the example quota and tokens."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from corral.master.auth import Tokens
from corral.master.quota import Quotas
from corral.master.server import MasterServer, build_master
from corral.model.spec import parse_job_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKEN_OF = {"alice": "example-token-alice", "bob": "example-token-bob"}
# The examples name no user (a job is its submitter's); who submits each here.
SUBMITTER = {"prep.yaml": "alice", "batch.yaml": "alice", "service.yaml": "alice", "gpu.yaml": "bob",
             "web-allocs.yaml": "alice", "web-in-allocs.yaml": "alice", "logsaver.yaml": "alice"}
ORDER = ("prep.yaml", "batch.yaml", "service.yaml", "gpu.yaml", "web-allocs.yaml", "web-in-allocs.yaml", "logsaver.yaml")


@pytest.fixture
def master(tmp_path):
    srv = MasterServer(build_master(f"sqlite:///{tmp_path}/s.db", validate=True, quota_path=EXAMPLES / "quota.yaml"),
                       Tokens.load(EXAMPLES / "tokens.yaml")).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_every_example_spec_validates():
    for name in ORDER:
        # As the API reads it: without a user, the submitter's.
        parse_job_spec({**yaml.safe_load((EXAMPLES / name).read_text()), "user": SUBMITTER[name]})
    assert Quotas.load(EXAMPLES / "quota.yaml").table is not None
    assert {p.role for p in Tokens.load(EXAMPLES / "tokens.yaml").table.values()} == {"user", "admin", "agent"}


def test_the_examples_are_admitted_in_order(master):
    with httpx.Client(base_url=master.url + "/api/v1", timeout=10) as client:
        for name in ORDER:
            spec = yaml.safe_load((EXAMPLES / name).read_text())
            assert "user" not in spec and "owner" not in spec, name
            r = client.post("/jobs", json=spec, headers={"Authorization": f"Bearer {TOKEN_OF[SUBMITTER[name]]}"})
            assert r.status_code == 201, (name, r.text)
        crunch = client.get("/jobs/crunch.alice/tasks/0/why", headers={"Authorization": "Bearer example-token-bob"})
        assert crunch.json()["state"] == "pending"
