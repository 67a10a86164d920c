"""A job's placement water level through the API: accepted and kept in its spec, refused naming the field."""

from __future__ import annotations

from tests.master.conftest import auth

ALICE = auth("t-alice")


def web(**fields):
    return {"name": "web", "tasks": 2, "resources": {"cpu": "1", "memory": "1Gi"}, **fields}


def test_a_job_naming_a_water_level_is_accepted_with_its_canonical_name(client):
    r = client.post("/jobs", json=web(placement="utilization-first"), headers=ALICE)
    assert r.status_code == 201, r.text
    assert client.get("/jobs/web", headers=ALICE).json()["spec"]["placement"] == "utilisation-first"


def test_an_unknown_placement_is_a_4xx_naming_the_field_and_the_choices(client):
    r = client.post("/jobs", json=web(placement="tightest"), headers=ALICE)
    assert 400 <= r.status_code < 500
    error = r.json()["errors"][0]
    assert error["field"] == "placement" and "stability-first" in error["message"]
    assert client.get("/jobs", headers=ALICE).json()["count"] == 0
