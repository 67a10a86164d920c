"""The agent's notifier against a fake sender: what reaches the master, in how many bodies, and that the
runner never waits for it. No sockets; waits are bounded by events, never by sleeping a guessed time."""

from __future__ import annotations

import threading

import httpx
import pytest

from corral.agent import supervisor as sv
from corral.agent.launch import TaskLaunch
from corral.agent.notifier import DROP, OK, RETRY, HttpSender, Notifier
from corral.agent.runner import Runner


def status(task: str, state: str = "running", generation: int = 1, **fields) -> dict:
    return {"task_id": task, "generation": generation, "state": state, "pid": fields.pop("pid", 100),
            "exit_code": None, "failures": 0, "restarts": 0, "last_error": "", "healthy": None,
            "usage": {"cpu_milli": 0, "memory_bytes": 0}, **fields}


class FakeSender:
    """Answers each body with the next outcome of ``script`` (then OK); can hold a body until released."""

    def __init__(self, script=(), hold: bool = False):
        self.script = list(script)
        self.bodies: list[dict] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, body: dict) -> str:
        self.bodies.append(body)
        self.entered.set()
        assert self.release.wait(10), "the test never released the sender"
        return self.script.pop(0) if self.script else OK


@pytest.fixture
def make():
    made: list[Notifier] = []

    def _make(sender, **kw) -> Notifier:
        n = Notifier(sender, incarnation=42, coalesce_s=0.001, backoff_s=0.001, backoff_max_s=0.004, seed="t", **kw)
        made.append(n)
        return n

    yield _make
    for n in made:
        n.stop()


def tasks_of(body: dict) -> list[tuple[str, str]]:
    return [(t["task_id"], t["state"]) for t in body["tasks"]]


def test_changes_offered_together_go_out_in_one_body_with_the_incarnation_and_a_sequence_number(make):
    sender = FakeSender()
    n = make(sender)
    n.offer([status("a", "finished", exit_code=0)])
    n.offer([status("b", "starting", pid=None)])
    n.start()
    assert n.wait_idle(10)
    [body] = sender.bodies
    assert body["incarnation"] == "42" and body["seq"] == 1
    assert tasks_of(body) == [("a", "finished"), ("b", "starting")]


def test_only_news_is_sent_and_the_newest_status_of_a_task_wins(make):
    sender = FakeSender()
    n = make(sender)
    n.offer([status("a", "starting", pid=None)])
    n.offer([status("a", "running", pid=7)])
    n.offer([status("a", "running", pid=7, usage={"cpu_milli": 5, "memory_bytes": 1})])  # usage is not news
    n.start()
    assert n.wait_idle(10)
    n.offer([status("a", "running", pid=7, restart_in_s=3.0)])  # nor is the countdown
    n.offer([status("a", "running", pid=7, healthy=False)])  # health is
    assert n.wait_idle(10)
    assert [tasks_of(b) for b in sender.bodies] == [[("a", "running")], [("a", "running")]]
    assert sender.bodies[1]["tasks"][0]["healthy"] is False and sender.bodies[1]["seq"] == 2


def test_a_failed_send_is_retried_with_what_changed_meanwhile_under_a_new_sequence_number(make):
    sender = FakeSender(script=[RETRY, RETRY])
    n = make(sender)
    n.offer([status("a", "running")])
    n.start()
    assert n.wait_idle(10)
    assert [b["seq"] for b in sender.bodies] == [1, 2, 3]
    assert all(tasks_of(b) == [("a", "running")] for b in sender.bodies)
    assert (n.sent, n.retries, n.dropped) == (1, 2, 0)


def test_a_retry_carries_the_newest_status_of_a_task_that_changed_while_it_waited(make):
    sender = FakeSender(script=[RETRY], hold=True)
    n = make(sender).start()
    n.offer([status("a", "running")])
    assert sender.entered.wait(10)
    n.offer([status("a", "finished", pid=None, exit_code=0), status("b", "starting", pid=None)])
    sender.release.set()
    assert n.wait_idle(10)
    assert tasks_of(sender.bodies[0]) == [("a", "running")]
    assert tasks_of(sender.bodies[1]) == [("a", "finished"), ("b", "starting")]
    assert len(sender.bodies) == 2


def test_the_notifier_gives_up_after_its_tries_and_on_a_refusal_retrying_cannot_fix(make):
    sender = FakeSender(script=[RETRY] * 3)
    n = make(sender, give_up_after=3)
    n.offer([status("a")])
    n.start()
    assert n.wait_idle(10)
    assert len(sender.bodies) == 3 and (n.sent, n.dropped) == (0, 1)
    refused = FakeSender(script=[DROP])
    m = make(refused)
    m.offer([status("a"), status("b")])
    m.start()
    assert m.wait_idle(10)
    assert len(refused.bodies) == 1 and m.dropped == 2


def test_a_burst_larger_than_a_body_is_split_into_bodies_of_at_most_max_batch(make):
    sender = FakeSender()
    n = make(sender, max_batch=2)
    n.offer([status(f"t{i}") for i in range(5)])
    n.start()
    assert n.wait_idle(10)
    assert [len(b["tasks"]) for b in sender.bodies] == [2, 2, 1]
    assert sorted(t for b in sender.bodies for t, _ in tasks_of(b)) == [f"t{i}" for i in range(5)]


def test_offer_returns_while_a_send_is_stuck_and_survives_a_bad_status(make):
    sender = FakeSender(hold=True)
    n = make(sender).start()
    n.offer([status("a")])
    assert sender.entered.wait(10)
    done = threading.Event()

    def offer_more():
        n.offer([status("b")])
        n.offer([{"no task_id": True}])  # a bug upstream: logged, never raised into the runner
        done.set()

    threading.Thread(target=offer_more, daemon=True).start()
    assert done.wait(10), "offer blocked behind a send in flight"
    sender.release.set()
    assert n.wait_idle(10)
    assert [tasks_of(b) for b in sender.bodies] == [[("a", "running")], [("b", "running")]]


def test_a_sender_that_raises_is_retried_like_a_failed_send(make):
    calls = []

    def flaky(body):
        calls.append(body["seq"])
        if len(calls) == 1:
            raise RuntimeError("boom")
        return OK

    n = make(flaky)
    n.offer([status("a")])
    n.start()
    assert n.wait_idle(10)
    assert calls == [1, 2] and n.sent == 1


@pytest.mark.parametrize("answer, outcome", [
    (httpx.Response(200, json={"applied": True}), OK),
    (httpx.Response(503, json={"error": "unavailable"}), RETRY),
    (httpx.Response(429), RETRY),
    (httpx.Response(404, json={"error": "not_found"}), DROP),
    (httpx.Response(400, json={"error": "invalid"}), DROP),
], ids=["a 2xx is delivered", "a 503 is retried", "a 429 is retried", "an unknown machine drops the body",
        "a refused body is dropped"])
def test_the_http_sender_posts_to_the_machine_s_notify_path_with_the_agent_token(answer, outcome):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    sender = HttpSender("http://master:7100/", "m1", "t-agent")
    sender.client = httpx.Client(transport=httpx.MockTransport(handler))
    try:
        assert sender({"incarnation": "1", "seq": 1, "tasks": []}) == outcome
    finally:
        sender.close()
    assert seen[0].url == "http://master:7100/api/v1/agents/m1/notify"
    assert seen[0].headers["authorization"] == "Bearer t-agent"


def test_the_http_sender_retries_when_the_master_cannot_be_reached():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    sender = HttpSender("http://master:7100", "m1", "t")
    sender.client = httpx.Client(transport=httpx.MockTransport(refuse))
    try:
        assert sender({"incarnation": "1", "seq": 1, "tasks": []}) == RETRY
        assert "ConnectError" in sender.last_error
    finally:
        sender.close()


class _NoIsolation:
    name = "none"


def test_the_runner_offers_the_status_of_each_task_an_event_touched(tmp_path):
    """The hook alone, driven through Runner.submit with events the supervisor accepts (no processes)."""
    runner = Runner(tmp_path, _NoIsolation())  # type: ignore[arg-type]
    offered: list[list[dict]] = []
    runner.on_status = offered.append
    launch = TaskLaunch.model_validate({"task_id": "t1", "generation": 1, "name": "t1", "command": "true"})
    runner._execute = lambda ins: []  # type: ignore[method-assign]  # carry nothing out: no real process
    runner.submit(sv.Launch(launch))
    attempt = runner.supervisor.tasks["t1"].attempt
    runner.submit(sv.Started("t1", attempt, 4321))
    runner.submit(sv.Tick())  # touches nothing: nothing offered
    runner.submit(sv.Exited("t1", attempt, 0))
    assert [[(s["task_id"], s["state"], s["pid"]) for s in batch] for batch in offered] == [
        [("t1", "starting", None)], [("t1", "running", 4321)], [("t1", "finished", None)]]
