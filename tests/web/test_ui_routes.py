"""The UI's routes without a browser: sign-in and the cookie, every page, escaping of user-supplied
strings, other users' env values, and the actions going through the API with the session's token."""

from __future__ import annotations

import re
import time

import pytest

from corral.master.usage import allocated_on
from tests.web.conftest import EVIL, api, ui

PAGES = ["/ui/cell", "/ui/jobs", "/ui/jobs?user=alice&state=running&band=batch", "/ui/jobs/web.alice",
         "/ui/jobs/pinned.alice", "/ui/machines/m1", "/ui/machines/m2", "/ui/users"]


def submit(srv, token: str, **spec) -> None:
    body = {"tasks": 1, "command": "sleep 100", "resources": {"cpu": "1", "memory": "1Gi"}, **spec}
    with api(srv, token) as c:
        r = c.post("/jobs", json=body)
        assert r.status_code == 201, r.text


def until(predicate, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while not (found := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


@pytest.fixture
def cell(server):
    submit(server, "t-alice", name="web", tasks=2, constraints=["rack == r1"],
           env={"SECRET": "alice-s3cret-value", "MODE": EVIL})
    submit(server, "t-alice", name="pinned", constraints=[f"rack == {EVIL}x"])  # never fits: pending
    submit(server, "t-bob", name="batch", priority=0, constraints=["rack == r1"], command=EVIL,
           env={"TOKEN": "bob-s3cret-value"})
    with api(server) as ops:
        until(lambda: ops.get("/jobs/web.alice").json()["task_states"]["starting"] == 2)
        until(lambda: ops.get("/jobs/batch.bob").json()["task_states"]["starting"] == 1)
    return server


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" content="([0-9a-f]+)"', page).group(1)


def test_every_page_needs_a_signed_in_user_and_the_cookie_is_scoped_to_the_ui(cell):
    anonymous = ui(cell)
    for page in PAGES:
        r = anonymous.get(page)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next="), page
    assert anonymous.get("/ui/cell", headers={"X-Corral-Fragment": "1"}).status_code == 401
    bad = anonymous.post("/ui/login", data={"token": "nope"})
    assert bad.status_code == 401 and "Unknown token" in bad.text
    agent = anonymous.post("/ui/login", data={"token": "t-agent"})
    assert agent.status_code == 401  # agents have no business in the UI
    r = anonymous.post("/ui/login", data={"token": "t-alice", "next": "https://elsewhere.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/cell"  # never off to another site
    cookie = r.headers["set-cookie"].lower()
    for part in ("corral_token=t-alice", "path=/ui", "httponly", "samesite=strict"):
        assert part in cookie
    assert "t-alice" not in anonymous.get("/ui/cell").text  # the token never reaches a page


def test_every_page_renders_for_a_user_and_its_live_part_alone_on_request(cell):
    client = ui(cell, "t-bob")
    for page in PAGES:
        r = client.get(page)
        assert r.status_code == 200, (page, r.text[:500])
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert '<div id="live">' in r.text and "signed in as bob" in r.text
        part = client.get(page, headers={"X-Corral-Fragment": "1"})
        assert part.status_code == 200 and "<html" not in part.text and "<nav" not in part.text
    jobs = client.get("/ui/jobs?user=alice").text
    assert "web.alice" in jobs and "batch.bob" not in jobs
    assert "batch.bob" not in client.get("/ui/jobs?band=production").text
    job = client.get("/ui/jobs/pinned.alice").text
    assert "0/2 machines are available: 2 constraint rack==" in job  # the scheduler's own sentence
    assert client.get("/ui/jobs/nothing.alice").status_code == 404
    assert client.get("/ui/machines/nowhere").status_code == 404


def test_user_supplied_strings_are_escaped_everywhere(cell):
    client = ui(cell, "t-ops")
    for page in PAGES + ["/ui/jobs/batch.bob"]:
        text = client.get(page).text
        assert "<script>alert" not in text and 'alert("x")' not in text, page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in client.get("/ui/machines/m2").text
    assert "&lt;script&gt;alert" in client.get("/ui/cell").text  # the pending reason names the constraint


def test_no_page_shows_another_users_env_values(cell):
    pages = PAGES + ["/ui/jobs/batch.bob"]
    for token, own, other in (("t-bob", "bob-s3cret-value", "alice-s3cret-value"),
                              ("t-alice", "alice-s3cret-value", "bob-s3cret-value")):
        client = ui(cell, token)
        for page in pages:
            assert other not in client.get(page).text, (token, page)
    alice = ui(cell, "t-alice").get("/ui/jobs/web.alice").text
    assert "alice-s3cret-value" in alice  # the owner sees their own
    for page in pages:  # an admin is another user too
        assert "s3cret-value" not in ui(cell, "t-ops").get(page).text


def test_actions_need_the_form_token_and_a_confirmation_and_go_through_the_api(cell):
    bob, alice = ui(cell, "t-bob"), ui(cell, "t-alice")
    page = alice.get("/ui/jobs/web.alice").text
    assert 'action="/ui/jobs/web.alice/kill"' in page and 'data-confirm="Kill job web.alice?' in page
    assert 'action="/ui/jobs/web.alice/kill"' not in bob.get("/ui/jobs/web.alice").text  # not bob's to change
    token = csrf_of(page)
    forged = alice.post("/ui/jobs/web.alice/kill", data={"confirmed": "1", "csrf": "0" * 40})
    assert forged.status_code == 403
    foreign = alice.post("/ui/jobs/web.alice/kill", data={"confirmed": "1", "csrf": token},
                         headers={"Origin": "http://elsewhere.example"})
    assert foreign.status_code == 403
    ask = alice.post("/ui/jobs/web.alice/kill", data={"csrf": token})
    assert ask.status_code == 200 and "Kill job web.alice?" in ask.text and 'name="confirmed" value="1"' in ask.text
    # bob's own session token, the API's rule: a user changes only their own jobs
    refused = bob.post("/ui/jobs/web.alice/kill", data={"confirmed": "1", "csrf": csrf_of(bob.get("/ui/cell").text)},
                       headers={"X-Corral-Fragment": "1"})
    assert refused.status_code == 403 and "may not change jobs of user alice" in refused.json()["message"]
    frag = {"X-Corral-Fragment": "1"}
    r = alice.post("/ui/jobs/web.alice/priority", data={"confirmed": "1", "csrf": token, "priority": "5"}, headers=frag)
    assert r.status_code == 200 and r.json()["ok"] and "priority" in r.json()["message"], r.text
    r = alice.post("/ui/jobs/web.alice/scale", data={"confirmed": "1", "csrf": token, "tasks": "3"}, headers=frag)
    assert r.status_code == 200, r.text
    bad = alice.post("/ui/jobs/web.alice/priority", data={"confirmed": "1", "csrf": token, "priority": "12"},
                     headers=frag)
    assert bad.status_code == 400 and "priority" in bad.json()["message"]
    nan = alice.post("/ui/jobs/web.alice/scale", data={"confirmed": "1", "csrf": token, "tasks": "x"}, headers=frag)
    assert nan.status_code == 400 and "tasks: expected an integer" in nan.json()["message"]
    with api(cell) as ops:
        job = ops.get("/jobs/web.alice").json()
        assert job["priority"] == 5 and job["tasks"] == 3
        done = alice.post("/ui/jobs/web.alice/kill", data={"confirmed": "1", "csrf": token})
        assert done.status_code == 303 and done.headers["location"] == "/ui/jobs/web.alice"
        assert until(lambda: ops.get("/jobs/web.alice").json()["state"] == "killed")
    assert alice.post("/ui/logout", data={"csrf": token}).status_code == 303


def test_usage_over_time_comes_from_the_history_and_the_charts_fit_their_axes(cell):
    master = cell.master
    now = time.time()
    names = [t["name"] for t in api(cell).get("/jobs/web.alice/tasks").json()["tasks"]]
    with master.lock:
        allocated = allocated_on(master.core.state, "m1")
    assert allocated == (3000, 3 * 2**30)  # alice's two tasks and bob's one, all bands
    for i in range(5):
        statuses = [{"task_id": n, "state": "running", "usage": {"cpu_milli": 10 * (i + 1), "memory_bytes": 2**20}}
                    for n in names]
        master.usage.observe("m1", statuses, now - 10 + 2 * i, allocated)
    with api(cell) as ops:
        usage = ops.get("/usage/jobs/web.alice").json()
        assert [s["cpu"] for s in usage["tasks"][0]["history"]] == [10, 20, 30, 40, 50]
        machine = ops.get("/usage/machines/m1").json()
        assert machine["history"][-1]["cpu"] == 100 and machine["history"][-1]["cpu_allocated"] == 3000
        assert machine["allocated"]["batch"]["cpu"] == 2000 and machine["used"]["batch"]["cpu"] == 100
        assert machine["allocated"]["best-effort"]["cpu"] == 1000 and machine["used"]["best-effort"]["cpu"] == 0
        users = {u["user"]: u for u in ops.get("/usage/users").json()["users"]}
        assert users["alice"]["bands"]["batch"]["running"]["cpu"] == 2000
        assert users["alice"]["bands"]["batch"]["pending"]["cpu"] == 1000  # pinned waits
        assert users["alice"]["bands"]["batch"]["quota"]["cpu"] == 64000
        assert users["alice"]["dominant_share"] == pytest.approx(0.25)
    client = ui(cell, "t-bob")
    job = client.get("/ui/jobs/web.alice").text
    assert job.count("<polyline") == 4 and "0 – 50m over the last 8 s" in job  # y up to the data's top
    assert client.get("/ui/machines/m1").text.count("<polyline") == 4
    users_page = client.get("/ui/users").text
    assert "25.0 %" in users_page and "64 cpu" in users_page
