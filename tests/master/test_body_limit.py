"""Every route's request body is bounded: 413 with the limit in the message, nothing buffered past it."""

from __future__ import annotations

import pytest

from corral.master.middleware import MAX_BODY
from tests.master.conftest import auth

ROUTES = [("PUT", "/jobs/x"), ("POST", "/agents/register"), ("POST", "/machines"), ("POST", "/jobs"),
          ("POST", "/agents/m1/notify"), ("POST", "/jobs/x/kill"), ("GET", "/jobs")]
LIMIT_MESSAGE = f"expected at most {MAX_BODY} bytes (the master's limit on a request body)"


@pytest.mark.parametrize("method,path", ROUTES)
def test_a_body_over_the_limit_is_a_413_naming_the_limit(client, method, path):
    r = client.request(method, path, headers={**auth("t-ops"), "content-type": "application/json"},
                       content=b" " * (MAX_BODY + 1))
    assert r.status_code == 413, r.text
    assert r.json()["errors"] == [{"field": "body", "message": LIMIT_MESSAGE}]


@pytest.mark.parametrize("method,path", [("PUT", "/jobs/x"), ("POST", "/agents/register")])
def test_a_chunked_body_without_a_length_is_counted_as_it_arrives(client, method, path):
    def chunks():
        for _ in range(64):
            yield b" " * (64 << 10)  # 4 MiB in all, no Content-Length

    r = client.request(method, path, headers={**auth("t-ops"), "content-type": "application/json"}, content=chunks())
    assert r.status_code == 413 and r.json()["errors"][0]["message"] == LIMIT_MESSAGE


def test_a_body_within_the_limit_reaches_the_route(client):
    r = client.post("/agents/register", headers=auth("t-ops"),
                    json={"name": "m1", "address": "http://127.0.0.1:9", "capacity": {"cpu": "4", "memory": "8Gi"},
                          "attributes": {"pad": "x" * 1000}})
    assert r.status_code == 200, r.text
