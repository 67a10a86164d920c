"""Who calls (bearer tokens) and what each caller may change; the FastAPI dependencies and their scheme."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from corral.master.auth import (Authenticator, Principal, Tokens, Unauthorized, bearer_token, may_change,
                                may_register, principal_of, user_of)
from corral.master.errors import AdmissionError
from corral.master.responses import error_response

TOKENS = Tokens.parse({"t-alice": {"user": "alice"}, "t-ops": {"user": "ops", "role": "admin"},
                       "t-agent": {"user": "agents", "role": "agent", "machine": "*"}})
ALICE, OPS, AGENT = Principal("alice", "user"), Principal("ops", "admin"), Principal("agents", "agent", "*")

HEADERS = [
    ("a user's token names the user", "Bearer t-alice", ALICE),
    ("the scheme is case-insensitive and spaces around the token do not matter", "bearer   t-ops ", OPS),
    ("an agent's token names the agent role", "Bearer t-agent", AGENT),
    ("no header is unauthorized and says what to send", "", "expected the header 'Authorization: Bearer <token>'"),
    ("another scheme is unauthorized", "Basic t-alice", "expected the header 'Authorization: Bearer <token>'"),
    ("a scheme without a token is unauthorized", "Bearer  ", "expected the header 'Authorization: Bearer <token>'"),
    ("a token not in the file is unauthorized", "Bearer t-mallory", "unknown token"),
]


@pytest.mark.parametrize("case,header,expected", HEADERS, ids=[h[0] for h in HEADERS])
def test_the_authorization_header_resolves_to_a_principal_or_a_401(case, header, expected):
    if isinstance(expected, Principal):
        assert principal_of(TOKENS, header) == expected
        return
    with pytest.raises(Unauthorized) as e:
        principal_of(TOKENS, header)
    assert (e.value.status, e.value.kind, e.value.errors) == (401, "unauthorized", [("authorization", expected)])


@pytest.mark.parametrize("header,token", [("Bearer abc", "abc"), ("BEARER abc ", "abc"), ("Bearer", None),
                                          ("Token abc", None), ("", None)],
                         ids=["a bearer header", "an upper-case scheme", "no token", "another scheme", "nothing"])
def test_the_bearer_token_of_a_header(header, token):
    assert bearer_token(header) == token


def test_an_agent_token_is_no_user():
    assert user_of(TOKENS, "Bearer t-alice") == ALICE and user_of(TOKENS, "Bearer t-ops") == OPS
    with pytest.raises(AdmissionError) as e:
        user_of(TOKENS, "Bearer t-agent")
    assert (e.value.status, e.value.kind, e.value.errors[0][0]) == (403, "forbidden", "authorization")


CHANGES = [
    ("a user changes their own job", ALICE, "alice", True),
    ("a user may not change another user's job", ALICE, "bob", False),
    ("an admin changes anyone's job", OPS, "bob", True),
]


@pytest.mark.parametrize("case,who,owner,allowed", CHANGES, ids=[c[0] for c in CHANGES])
def test_who_may_change_a_job(case, who, owner, allowed):
    if allowed:
        may_change(who, owner)
        return
    with pytest.raises(AdmissionError) as e:
        may_change(who, owner)
    assert e.value.status == 403 and e.value.errors == [("authorization", "user alice may not change jobs of user bob")]


REGISTRATIONS = [
    ("an agent registers its machine on the agents' route", AGENT, True, True),
    ("an admin may use the agents' route", OPS, True, True),
    ("a user may not use the agents' route", ALICE, True, False),
    ("an admin registers a machine on the machines route", OPS, False, True),
    ("an agent may not use the machines route", AGENT, False, False),
    ("a user may not use the machines route", ALICE, False, False),
]


@pytest.mark.parametrize("case,who,through_agents,allowed", REGISTRATIONS, ids=[r[0] for r in REGISTRATIONS])
def test_who_may_register_a_machine(case, who, through_agents, allowed):
    if allowed:
        may_register(who, through_agents)
        return
    with pytest.raises(AdmissionError) as e:
        may_register(who, through_agents)
    assert e.value.status == 403 and e.value.errors[0][0] == "authorization"


@pytest.fixture
def app():
    auth = Authenticator(TOKENS)
    app = FastAPI()

    @app.exception_handler(AdmissionError)
    async def _refused(request, exc: AdmissionError):
        return error_response(exc.status, exc.kind, exc.errors)

    @app.get("/anyone")
    def anyone(who: Principal = Depends(auth.anyone)) -> dict:
        return {"user": who.user, "role": who.role}

    @app.get("/user")
    def user(who: Principal = Depends(auth.user)) -> dict:
        return {"user": who.user, "role": who.role}

    return app


DEPENDENCIES = [
    ("any known token reads", "/anyone", "Bearer t-agent", 200, "agents"),
    ("no token is a 401 in corral's error body", "/anyone", None, 401, "unauthorized"),
    ("another scheme is a 401, not the framework's 403", "/anyone", "Basic x", 401, "unauthorized"),
    ("a user's token is a user", "/user", "Bearer t-alice", 200, "alice"),
    ("an agent's token is no user", "/user", "Bearer t-agent", 403, "forbidden"),
]


@pytest.mark.parametrize("case,path,header,status,word", DEPENDENCIES, ids=[d[0] for d in DEPENDENCIES])
def test_the_dependencies_resolve_the_caller_and_answer_refusals_in_the_error_body(app, case, path, header, status,
                                                                                  word):
    with TestClient(app) as client:
        r = client.get(path, headers={"Authorization": header} if header else {})
    assert r.status_code == status
    body = r.json()
    assert (body["user"] if status == 200 else body["error"]) == word
    if status != 200:
        assert body["errors"][0]["field"] == "authorization"


def test_the_dependencies_declare_the_bearer_scheme_in_openapi(app):
    doc = app.openapi()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "a token of the master's tokens file (role user, admin or agent)"}
    assert all(op["security"] == [{"HTTPBearer": []}] for ops in doc["paths"].values() for op in ops.values())
