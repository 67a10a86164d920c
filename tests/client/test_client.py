"""corral.client.Client against a live master: typed results, field errors, the event history
(pages, filters, RFC 3339 times, watch), and a submission retried with its request id."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from corral.client import ApiError, Client
from corral.master import responses
from tests.master.conftest import TOKENS, server  # noqa: F401 (the fixture)

MACHINE = {"name": "m1", "address": "http://127.0.0.1:7101",
           "capacity": {"cpu": 8000, "memory": 17179869184, "disk": 0, "gpu": 0},
           "gpu_model": "", "attributes": {"rack": "r1"}, "isolation": "cgroup-v1"}


def spec(name="web", **fields):
    return {"name": name, "tasks": 2, "resources": {"cpu": "500m", "memory": "1Gi"}, "command": "true", **fields}


@pytest.fixture
def alice(server):  # noqa: F811
    with Client(server.url, "t-alice") as c:
        yield c


@pytest.fixture
def cell(server):  # noqa: F811
    with Client(server.url, "t-ops", typed=False) as ops:
        ops.http.call("POST", "/machines", json=MACHINE)
    return server


def wait(predicate, timeout_s=10.0):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_every_call_answers_with_the_apis_own_response_model(cell, alice):
    reply = alice.submit(spec())
    assert isinstance(reply, responses.JobReply) and reply.job == "web.alice"  # no user: the token's
    assert isinstance(alice.get("web"), responses.JobDetail)
    assert [j.job for j in alice.list(user="alice").jobs] == ["web.alice"]
    assert isinstance(alice.tasks(job="web"), responses.TaskList)
    assert isinstance(alice.machines(), responses.MachineList)
    wait(lambda: alice.get("web").task_states.get("running", 0) + alice.get("web").task_states.get("starting", 0))
    assert isinstance(alice.why("web/0"), responses.WhyView)
    updated = alice.update(spec(priority=3))
    assert isinstance(updated, responses.UpdateReply) and "priority" in updated.changed
    assert alice.kill("web").state in ("killed", "dead", "running", "pending")
    assert isinstance(alice.job_events("web"), responses.JobEvents)


def test_a_refusal_raises_with_the_field_errors_of_the_masters_answer(cell, alice):
    with pytest.raises(ApiError) as e:
        alice.submit(spec(tasks=0))
    assert e.value.status == 400 and e.value.kind == "invalid" and e.value.code == 2
    assert e.value.field("tasks") and "tasks" in e.value.message
    with pytest.raises(ApiError) as e:
        alice.get("nosuch")
    assert e.value.status == 404 and e.value.kind == "not_found"


def test_untyped_results_are_the_plain_json(cell):
    with Client(cell.url, "t-alice", typed=False) as c:
        assert c.submit(spec("raw"))["job"] == "raw.alice"
        assert isinstance(c.get("raw"), dict)


def test_a_submission_whose_answer_was_lost_is_retried_with_its_request_id_and_made_once(cell, alice):
    from corral.client.http1 import NoAnswer

    http = alice.http._http()
    real, seen = http.exchange, []

    def answer_lost_once(method, url, body, headers):
        if method != "POST":
            return real(method, url, body, headers)
        seen.append(headers["X-Request-Id"])
        response = real(method, url, body, headers)  # the master got it and made the job ...
        if len(seen) == 1:
            raise NoAnswer("failed", "connection reset", sent=True)  # ... but its answer never came back
        return response

    http.exchange = answer_lost_once
    reply = alice.submit(spec("once"))
    assert len(seen) == 2 and seen[0] == seen[1]
    assert reply.job == "once.alice" and reply.duplicate is True
    assert alice.list().count == 1


def test_the_event_history_pages_with_a_cursor_filters_and_gives_rfc3339_times(cell, alice):
    alice.submit(spec("a"))
    alice.submit(spec("b"))
    wait(lambda: len(alice.events(type="task_scheduled").events) == 4)
    page = alice.events(limit=2)
    assert isinstance(page, responses.EventPage) and len(page.events) == 2
    rest = alice.events(cursor=page.next)
    seqs = [e.seq for e in page.events + rest.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and rest.next == seqs[-1] == page.last
    assert page.events[0].type == "machine_registered" and page.events[0].machine == "m1"
    datetime.fromisoformat(page.events[0].time.replace("Z", "+00:00"))
    assert page.events[0].time.endswith("Z")
    mine = alice.events(job="a").events
    assert {e.job for e in mine} == {"a.alice"} and {e.type for e in mine} == {"job_submitted", "task_scheduled"}
    assert all(e.machine == "m1" for e in alice.events(machine="m1", type="task_scheduled").events)
    assert {e.user for e in alice.events(user="alice").events} == {"alice"}
    later = alice.events(since="2999-01-01T00:00:00Z")
    assert later.events == []
    with pytest.raises(ApiError) as e:
        alice.events(type="nonsense")
    assert e.value.field("type") and "task_scheduled" in e.value.field("type")
    with pytest.raises(ApiError) as e:
        alice.events(since="yesterday")
    assert e.value.field("since")
    for malformed in ("Web", "a.b.c", "a..b"):  # a malformed job filter is refused, never read as every job
        with pytest.raises(ApiError) as e:
            alice.events(job=malformed)
        assert e.value.status == 400 and "NAME.USER" in e.value.field("job")


def test_watch_streams_the_events_logged_after_it_starts(cell, alice):
    got = []

    def watch():
        for event in alice.watch(job="w", idle_timeout_s=5.0):
            got.append(event)
            if len(got) == 3:
                return

    thread = threading.Thread(target=watch)
    thread.start()
    import time
    time.sleep(0.5)
    with Client(cell.url, "t-alice") as other:
        other.submit(spec("w"))
    thread.join(15)
    assert not thread.is_alive()
    assert [e.type for e in got] == ["job_submitted", "task_scheduled", "task_scheduled"]
    assert all(isinstance(e, responses.EventRecord) for e in got)
