"""``/api/v1/usage`` refusals: the API's own errors, fields named."""

from __future__ import annotations

import httpx

from tests.web.conftest import api


def test_usage_routes_need_a_token_and_name_what_is_missing(server):
    r = httpx.get(server.url + "/api/v1/usage/machines", timeout=5.0)
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "authorization"
    with api(server, "t-alice") as c:
        assert [m["name"] for m in c.get("/usage/machines").json()["machines"]] == ["m1", "m2"]
        missing = c.get("/usage/machines/nowhere")
        assert missing.status_code == 404 and missing.json()["errors"] == [
            {"field": "machine", "message": "no machine nowhere"}]
        assert c.get("/usage/jobs/nothing").status_code == 404
        bad = c.get("/usage/jobs/a.b.c")
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "job"
        assert c.get("/usage/users").json()["users"] == []
    spec = httpx.get(server.url + "/openapi.json", timeout=5.0).json()
    assert "/api/v1/usage/users" in spec["paths"] and not any(p.startswith("/ui") for p in spec["paths"])
