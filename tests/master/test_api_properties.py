"""Property: whatever JSON arrives, the API answers 2xx or a 4xx naming a field, never a 500,
and the state keeps its invariants (the master runs in validate mode)."""

from __future__ import annotations

import urllib.parse

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.master.auth import Tokens
from corral.master.server import MasterServer, build_master

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["name", "user", "priority", "tasks", "resources", "constraints", "after", "appclass", "max_per_domain",
          "spread", "command", "args", "env", "soft_constraints"]
RESOURCE_FIELDS = ["cpu", "memory", "disk", "gpu", "gpu_milli", "gpu_model", "ports"]
near_specs = st.fixed_dictionaries(
    {"name": st.sampled_from(["web", "Web", "", "a" * 70, "db"]),
     "resources": st.dictionaries(st.sampled_from(RESOURCE_FIELDS), json_values | st.sampled_from(["1", "500m", "1Gi"]))},
    optional={f: json_values for f in FIELDS if f not in ("name", "resources")},
)
bodies = near_specs | json_values
machine_bodies = st.dictionaries(st.sampled_from(["name", "address", "capacity", "attributes", "gpu_model", "x"]),
                                 json_values | st.just({"cpu": "4", "memory": "8Gi"}) | st.just("m1"), max_size=5)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz")
    srv = MasterServer(build_master(f"sqlite:///{path}/s.db", validate=True),
                       Tokens.parse({"t": {"user": "alice", "role": "admin"}})).start()
    with httpx.Client(base_url=srv.url + "/api/v1", headers={"Authorization": "Bearer t"}, timeout=10) as client:
        yield client
    srv.stop()


@pytest.mark.parametrize("raw", [b'{"name": "web", "tasks": NaN, "resources": {"cpu": Infinity, "memory": 1}}',
                                 b'{"name": "web", "resources": {"cpu": 1e400, "memory": -0.0}}',
                                 b'{"name": "web", "resources": {"cpu": 1, "memory": 1}, "tasks": 1' + b"0" * 5000 + b"}"])
def test_json_that_python_reads_loosely_is_still_a_4xx(api, raw):
    check(api.post("/jobs", content=raw, headers={"Content-Type": "application/json"}))


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["errors"] and all(e["field"] and e["message"] for e in body["errors"]), body


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, method=st.sampled_from(["submit", "update", "register"]))
def test_any_json_body_is_answered_without_a_500(api, body, method):
    if method == "submit":
        check(api.post("/jobs", json=body))
    elif method == "update":
        check(api.put("/jobs/web", json=body))
    else:
        check(api.post("/machines", json=body if isinstance(body, dict) else body))
    check(api.get("/jobs"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=machine_bodies)
def test_any_machine_registration_is_answered_without_a_500(api, body):
    check(api.post("/agents/register", json=body))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=st.text(min_size=1, max_size=30).filter(lambda s: "?" not in s and "#" not in s))
def test_any_job_or_task_reference_is_answered_without_a_500(api, ref):
    quoted = urllib.parse.quote(ref, safe="")
    for path in (f"/jobs/{quoted}", f"/tasks/{quoted}", f"/tasks/{quoted}/why", f"/jobs/{quoted}/events"):
        check(api.get(path))
