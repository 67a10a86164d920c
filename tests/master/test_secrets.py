"""A job's env values and its tasks' logs are for its owner and admins; others see the job without them."""

from __future__ import annotations

import pytest

from corral.master.views import HIDDEN_ENV
from tests.master.conftest import auth

SPEC = {"name": "db", "command": "sleep 1", "env": {"DB_PASSWORD": "hunter2", "MODE": "prod"},
        "resources": {"cpu": "1", "memory": "1Gi"}}


@pytest.fixture
def job(client):
    client.post("/jobs", headers=auth("t-alice"), json=SPEC).raise_for_status()
    return "db.alice"


@pytest.mark.parametrize("token", ["t-alice", "t-ops"])
def test_the_owner_and_an_admin_read_the_env_values(client, job, token):
    spec = client.get(f"/jobs/{job}", headers=auth(token)).json()["spec"]
    assert spec["env"] == {"DB_PASSWORD": "hunter2", "MODE": "prod"}


@pytest.mark.parametrize("token", ["t-bob", "t-agent"])
def test_another_user_or_an_agent_sees_the_env_names_with_the_values_hidden(client, job, token):
    r = client.get(f"/jobs/{job}", headers=auth(token))
    assert r.status_code == 200 and "hunter2" not in r.text
    assert r.json()["spec"]["env"] == {"DB_PASSWORD": HIDDEN_ENV, "MODE": HIDDEN_ENV}
    assert r.json()["spec"]["command"] == "sleep 1"  # the rest of the job is still visible


@pytest.mark.parametrize("token", ["t-bob", "t-agent"])
def test_only_the_owner_and_admins_read_a_tasks_logs(client, job, token):
    for path in (f"/jobs/{job}/tasks/0/logs", "/tasks/0.db.alice.local/logs"):
        r = client.get(path, headers=auth(token))
        assert r.status_code == 403, r.text
        assert r.json()["errors"] == [{"field": "authorization",
                                       "message": "the logs of 0.db.alice.local are for its owner alice and admins"}]
    # the owner passes the check (this master has no agents: the log is not found, not forbidden)
    assert client.get(f"/jobs/{job}/tasks/0/logs", headers=auth("t-alice")).status_code in (404, 503)

