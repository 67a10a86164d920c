"""Admission over HTTP refuses what the agent would refuse later, and guesses no number."""

from __future__ import annotations

import pytest

from tests.master.conftest import auth

SPEC = {"name": "strict", "command": "sleep 1", "resources": {"cpu": "1", "memory": "1Gi"}}
CASES = [({"env": {"A=B": "1"}}, "env"), ({"command": "a\u0000b"}, "command"), ({"tasks": "5"}, "tasks"),
         ({"tasks": True}, "tasks"), ({"priority": "0"}, "priority")]


@pytest.mark.parametrize("extra,field", CASES, ids=[c[1] + " " + repr(c[0]) for c in CASES])
def test_a_submission_the_agent_would_refuse_is_a_400_naming_the_field(client, extra, field):
    r = client.post("/jobs", headers=auth("t-alice"), json={**SPEC, **extra})
    assert r.status_code == 400 and [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert client.get("/jobs/strict", headers=auth("t-alice")).status_code == 404  # nothing was admitted
