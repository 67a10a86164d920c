"""The OpenAPI document says what the API does: the statuses each operation answers, the name
patterns and numeric bounds of the request bodies; a wrong method gets 405 with ``Allow``."""

from __future__ import annotations

import httpx
import pytest

from corral.model.spec import NAME
from tests.master.conftest import auth


@pytest.fixture
def document(server):
    return httpx.get(server.url + "/openapi.json", timeout=10).json()


def operations(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, set(op["responses"])


def test_every_operation_documents_a_missing_token_and_a_body_over_the_limit(document):
    missing = [(m, p) for m, p, statuses in operations(document) if not {"401", "413"} <= statuses]
    assert missing == []


def test_every_change_documents_its_refusals(document):
    for method, path, statuses in operations(document):
        if method in ("PUT", "DELETE") or (method == "POST" and not path.endswith("/notify")):
            assert {"400", "401", "403", "413", "503"} <= statuses, (method, path)


def test_reading_logs_documents_the_403_for_others(document):
    for path in ("/api/v1/tasks/{task}/logs", "/api/v1/jobs/{job}/tasks/{index}/logs"):
        assert "403" in document["paths"][path]["get"]["responses"]


def test_the_job_spec_schema_carries_the_name_pattern_and_the_bounds(document):
    spec = document["components"]["schemas"]["JobSpec"]["properties"]
    for field in ("name", "user"):
        assert spec[field]["pattern"] == NAME.pattern and spec[field]["maxLength"] == 64
    assert (spec["tasks"]["minimum"], spec["tasks"]["maximum"], spec["tasks"]["type"]) == (1, 100_000, "integer")
    assert "minimum" in spec["priority"] and "maximum" in spec["priority"]


@pytest.mark.parametrize("method,path,allow", [
    ("PATCH", "/jobs/web", "DELETE, GET, PUT"),  # three routes share the path: all of their methods
    ("DELETE", "/cell", "GET"),
    ("GET", "/agents/register", "POST"),
])
def test_a_wrong_method_is_a_405_with_allow_listing_every_method_of_the_path(client, method, path, allow):
    r = client.request(method, path, headers=auth("t-alice"))
    assert r.status_code == 405 and r.headers["allow"] == allow
    assert r.json()["errors"][0]["field"] == "path" and method in r.json()["errors"][0]["message"]
