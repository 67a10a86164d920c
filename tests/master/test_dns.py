"""The master's names over DNS, resolved with dnspython against a real UDP responder on 127.0.0.1."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from corral.master.commands import MachineDown, RegisterMachine, Submit, Tick, Update
from corral.master.dns import NameServer
from corral.model.job import TaskState

from tests.master.helpers import Harness, spec

R = TaskState.RUNNING


def web(tasks: int = 2, memory: str = "1Gi") -> dict:
    body = spec("web", tasks=tasks, memory=memory)
    body["resources"]["ports"] = {"http": 0, "admin": 0}
    return body


@pytest.fixture
def cell():
    """A core with two machines at 127.0.0.2 and 127.0.0.3 and its DNS responder."""
    h = Harness()
    for i, name in enumerate(("m1", "m2")):
        h.run(RegisterMachine(name, {"cpu": "4", "memory": "8Gi"}, address=f"http://127.0.0.{i + 2}:7000"))
    server = NameServer(SimpleNamespace(lock=threading.RLock(), core=h.core), ttl_s=3).start()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = [server.host], server.port, 3.0
    resolver.cache = None
    try:
        yield h, server, resolver
    finally:
        server.stop()


def a_records(resolver, name: str) -> set[str]:
    try:
        return {r.address for r in resolver.resolve(name, "A")}
    except dns.resolver.NoAnswer:
        return set()


def srv_records(resolver, name: str) -> set[tuple[int, str]]:
    return {(r.port, r.target.to_text()) for r in resolver.resolve(name, "SRV")}


def test_tasks_and_jobs_resolve_to_their_machines_and_named_ports_with_a_short_ttl(cell):
    h, server, resolver = cell
    h.run(Submit(web(tasks=2)))
    h.schedule()
    placed = {t.index: t for t in h.state.tasks_of("web.alice")}
    address = {"m1": "127.0.0.2", "m2": "127.0.0.3"}
    for i, task in placed.items():
        answer = resolver.resolve(f"{i}.web.alice.local", "A")
        assert {r.address for r in answer} == {address[task.machine]}
        assert answer.rrset.ttl == 3
        http = dict(zip(("http", "admin"), task.ports))["http"]
        assert srv_records(resolver, f"_http._tcp.{i}.web.alice.local") == {(http, f"{i}.web.alice.local.")}
    assert a_records(resolver, "web.alice.local") == {address[t.machine] for t in placed.values()}
    assert srv_records(resolver, "_admin._tcp.web.alice.local") == {
        (t.ports[1], f"{i}.web.alice.local.") for i, t in placed.items()}


def test_unknown_names_are_nxdomain_and_names_outside_the_zone_refused(cell):
    h, server, resolver = cell
    h.run(Submit(web(tasks=1)))
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("nope.alice.local", "A")
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("7.web.alice.local", "A")
    # A job with no running task is a known name without records.
    assert a_records(resolver, "web.alice.local") == set()
    reply = dns.query.udp(dns.message.make_query("example.com.", "A"), server.host, port=server.port, timeout=3)
    assert reply.rcode() == dns.rcode.REFUSED


def test_during_a_rolling_update_the_records_follow_the_tasks(cell):
    h, server, resolver = cell
    h.run(Submit(web(tasks=2)))
    h.schedule()
    assert len(a_records(resolver, "web.alice.local")) >= 1
    h.run(Update(web(tasks=2, memory="2Gi"), max_unavailable=1))
    # Task 0 is restarting: it has no records; task 1 still answers on its old ports.
    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve("0.web.alice.local", "A")
    old1 = h.task("web", 1)
    assert srv_records(resolver, "_http._tcp.web.alice.local") == {(old1.ports[0], "1.web.alice.local.")}
    for _ in range(4):  # place the restarted task, roll the next one
        h.schedule()
        h.run(Tick())
    tasks = h.state.tasks_of("web.alice")
    assert all(t.state is R and t.version == 2 for t in tasks)
    expected = {(t.ports[0], f"{t.index}.web.alice.local.") for t in tasks}
    assert srv_records(resolver, "_http._tcp.web.alice.local") == expected


def test_after_a_machine_is_lost_the_names_move_with_its_tasks(cell):
    h, server, resolver = cell
    h.run(Submit(web(tasks=1)))
    h.schedule()
    first = h.task("web").machine
    before = a_records(resolver, "0.web.alice.local")
    assert before == {"127.0.0.2" if first == "m1" else "127.0.0.3"}
    h.run(MachineDown(first, note="lost power"))
    with pytest.raises(dns.resolver.NoAnswer):  # lost: no records until it runs again
        resolver.resolve("0.web.alice.local", "A")
    h.core.failover.reschedule.release()
    h.schedule()
    task = h.task("web")
    assert task.state is R and task.machine != first
    assert a_records(resolver, "0.web.alice.local") == ({"127.0.0.2", "127.0.0.3"} - before)
    assert srv_records(resolver, "_http._tcp.0.web.alice.local") == {(task.ports[0], "0.web.alice.local.")}


def test_garbage_and_answers_are_not_answered_and_the_server_goes_on(cell):
    h, server, resolver = cell
    assert server.answer(b"\x00\x01garbage") is None
    reply = dns.message.make_response(dns.message.make_query("web.alice.local.", "A"))
    assert server.answer(reply.to_wire()) is None
    h.run(Submit(web(tasks=1)))
    h.schedule()
    assert a_records(resolver, "0.web.alice.local")
