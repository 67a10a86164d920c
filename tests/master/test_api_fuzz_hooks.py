"""The rules the fuzz hooks teach positive cases are the API's: a taught body is accepted by
admission where the untaught one was refused for exactly that rule."""

from __future__ import annotations

import pytest

pytest.importorskip("schemathesis")

from tests.master.api_fuzz_hooks import taught  # noqa: E402


def test_a_positive_job_waits_for_no_job_and_its_named_ports_are_distinct():
    body = {"name": "a", "after": "nosuch", "resources": {"cpu": 1, "memory": 1, "ports": {"a": 80, "b": 80, "c": 0}}}
    out = taught("POST", "/api/v1/jobs", body, {})
    assert out["after"] is None
    assert out["resources"]["ports"] == {"a": 80, "b": 0, "c": 0}
    assert body["after"] == "nosuch"  # the drawn value is not changed in place


@pytest.mark.parametrize("case, path_job, body, name, user", [
    ("a job of the caller's loses the body's user", "web", {"name": "x", "user": "bob"}, "web", None),
    ("a job of a named user takes the path's user", "web.alice", {"name": "x", "owner": "bob"}, "web", "alice"),
    ("a body without a name stays without one", "web.alice", {"tasks": 1}, None, "alice"),
])
def test_an_updates_body_names_the_job_of_its_path(case, path_job, body, name, user):
    out = taught("PUT", "/api/v1/jobs/{job}", body, {"job": path_job})
    assert out.get("name") == name and out.get("user") == user and "owner" not in out, case


def test_a_taught_job_is_admitted(client):
    from tests.master.conftest import auth

    body = taught("POST", "/api/v1/jobs", {"name": "taught", "after": "nosuch",
                                           "resources": {"cpu": 0, "memory": 0, "ports": {"a": 8080, "b": 8080}}}, {})
    assert client.post("/jobs", json=body, headers=auth("t-ops")).status_code == 201
