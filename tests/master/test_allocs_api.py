"""The alloc routes over real HTTP: alloc sets submitted and killed through /jobs, read through /allocs;
bad input is a 4xx naming the field."""

from __future__ import annotations

import pytest

from tests.master.conftest import auth

ALICE, BOB = auth("t-alice"), auth("t-bob")
SET = {"kind": "allocset", "name": "web-allocs", "count": 2, "resources": {"cpu": "1", "memory": "1Gi"}}


def test_an_alloc_set_is_submitted_as_a_job_and_read_with_its_allocs(client):
    r = client.post("/jobs", json=SET, headers=ALICE)
    assert r.status_code == 201 and r.json()["kind"] == "allocset" and r.json()["tasks"] == 2
    r = client.get("/allocs/web-allocs", headers=ALICE)
    assert r.status_code == 200
    body = r.json()
    assert body["allocset"] == "web-allocs.alice" and body["count"] == 2 and body["resources"]["cpu"] == 1000
    assert [a["alloc"] for a in body["allocs"]] == ["web-allocs/0", "web-allocs/1"]
    assert all(a["state"] == "pending" and a["reason"] for a in body["allocs"]), "no machines: each says why"
    assert client.get("/jobs/web-allocs", headers=ALICE).json()["kind"] == "allocset"
    listed = client.get("/allocs", headers=BOB, params={"user": "bob"}).json()
    assert listed == {"allocsets": [], "count": 0}
    assert client.get("/allocs", headers=BOB).json()["count"] == 1, "any caller may read, as jobs"
    assert client.delete("/jobs/web-allocs.alice", headers=BOB).status_code == 403, "only its user changes it"
    assert client.delete("/jobs/web-allocs", headers=ALICE).json()["state"] == "killed"
    assert client.get("/allocs", headers=ALICE).json()["count"] == 0
    assert client.get("/allocs", headers=ALICE, params={"all": "true"}).json()["count"] == 1


BAD = [
    ("a job in an alloc set that does not exist",
     {"name": "web", "alloc": "nope", "resources": {"cpu": "1", "memory": "1Gi"}}, 422, "alloc"),
    ("an alloc set with GPUs", {**SET, "resources": {"cpu": "1", "memory": "1Gi", "gpu": 1}}, 400, "resources"),
    ("an alloc set without a count of allocs but tasks", {**SET, "tasks": 2}, 400, "tasks"),
    ("a kind that does not exist", {**SET, "kind": "pod"}, 400, "kind"),
    ("a count that is not a number", {**SET, "count": "3"}, 400, "count"),
]


@pytest.mark.parametrize("case,spec,status,field", BAD, ids=[c[0] for c in BAD])
def test_bad_alloc_specs_are_refused_naming_the_field(client, case, spec, status, field):
    r = client.post("/jobs", json=spec, headers=ALICE)
    assert r.status_code == status and r.json()["errors"][0]["field"] == field, r.text


def test_reading_an_alloc_set_that_is_a_job_or_nothing_is_a_404(client):
    client.post("/jobs", json={"name": "web", "resources": {"cpu": "1", "memory": "1Gi"}}, headers=ALICE)
    r = client.get("/allocs/web", headers=ALICE)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "allocset"
    assert client.get("/allocs/nothing", headers=ALICE).status_code == 404
