"""An agent token acts for the one machine it is bound to: registering, notifying, being polled."""

from __future__ import annotations

import pytest

from corral.master.auth import Principal, Tokens
from corral.master.configfiles import ConfigFileError
from corral.master.link import LinkShards
from tests.master.conftest import TOKENS, auth


def registration(name, address="http://127.0.0.1:9"):
    return {"name": name, "address": address, "capacity": {"cpu": "4", "memory": "8Gi"}}


def test_an_agent_token_registers_its_own_machine(client):
    r = client.post("/agents/register", headers=auth("t-m1"), json=registration("m1"))
    assert r.status_code == 200, r.text


def test_an_agent_token_cannot_register_another_machine_and_the_403_names_the_field(client):
    client.post("/agents/register", headers=auth("t-m1"), json=registration("m1")).raise_for_status()
    r = client.post("/agents/register", headers=auth("t-m2"), json=registration("m1", "http://127.0.0.1:6666"))
    assert r.status_code == 403
    assert r.json()["errors"] == [{"field": "name", "message": "the token of agent-m2 is bound to machine m2, not m1"}]
    machines = client.get("/machines", headers=auth("t-alice")).json()["machines"]
    assert [(m["name"], m["address"]) for m in machines] == [("m1", "http://127.0.0.1:9")]  # untouched


def test_an_unbound_token_works_for_any_machine_only_because_the_file_says_machine_star(client):
    for name in ("m1", "m2"):
        assert client.post("/agents/register", headers=auth("t-agent"), json=registration(name)).status_code == 200


def test_an_agent_token_cannot_notify_for_another_machine(client):
    for token, name in (("t-m1", "m1"), ("t-m2", "m2")):
        client.post("/agents/register", headers=auth(token), json=registration(name)).raise_for_status()
    body = {"incarnation": "i1", "seq": 1, "tasks": []}
    r = client.post("/agents/m1/notify", headers=auth("t-m2"), json=body)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "machine"
    assert "bound to machine m2, not m1" in r.json()["errors"][0]["message"]
    assert client.post("/agents/m1/notify", headers=auth("t-m1"), json=body).status_code == 200


def test_an_admin_speaks_for_any_machine():
    ops = Principal("ops", "admin")
    assert ops.speaks_for("m1") and Principal("a", "agent", "*").speaks_for("m9")
    assert not Principal("a", "agent", "m2").speaks_for("m1") and not Principal("alice", "user").speaks_for("m1")


CASES = [
    ("an agent entry without a machine is refused, saying how to bind it or opt out",
     {"t": {"user": "agents", "role": "agent"}}, 'machine: NAME'),
    ("an empty machine is no binding", {"t": {"user": "a", "role": "agent", "machine": ""}}, "machine: NAME"),
    ("a user entry with a machine is refused", {"t": {"user": "alice", "role": "user", "machine": "m1"}},
     "only an agent token has a machine"),
]


@pytest.mark.parametrize("case,data,message", CASES, ids=[c[0] for c in CASES])
def test_the_tokens_file_names_a_missing_or_misplaced_binding(case, data, message):
    with pytest.raises(ConfigFileError, match=message):
        Tokens.parse(data)


def test_the_link_sends_a_machine_only_tokens_bound_to_it_or_to_any_machine():
    link = LinkShards(master=None, tokens=Tokens.parse(TOKENS))
    assert link.tokens_for("m1") == ["t-m1", "t-agent"]
    assert link.tokens_for("m3") == ["t-agent"]
    assert link._headers("m2") == {"Authorization": "Bearer t-m2"}
