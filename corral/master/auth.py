"""Bearer tokens: who is calling (a user, an admin or an agent), and what each may change.

Anyone with a token may read; a user changes only their own jobs; an admin
changes anything and may register machines; an agent token only registers its
machine and reports on it. Refusals are :class:`AdmissionError` with field ``authorization``:
401 (``unauthorized``) for no or an unknown token, 403 (``forbidden``) otherwise.

Tokens file (YAML)::

    s3cr3t-alice: {user: alice, role: user}
    s3cr3t-ops: {user: ops, role: admin}
    s3cr3t-m1: {user: agent-m1, role: agent, machine: m1}
    s3cr3t-fleet: {user: agents, role: agent, machine: "*"}

An agent token is bound to one machine name (``machine:``): it registers,
notifies and is polled for that machine only, so a stolen or shared agent
token cannot impersonate another machine. ``machine: "*"`` is the explicit
opt-out (a token any agent may use, e.g. while bootstrapping a fleet); an
agent entry with neither is refused when the file is read, so an old file
fails loudly rather than keeping its unbound tokens working.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from corral.master.errors import AdmissionError
from corral.master.configfiles import ConfigFileError, read_yaml

ROLES = ("user", "admin", "agent", "scheduler")  # scheduler: an external scheduler (plan_api.py)
ANY_MACHINE = "*"


@dataclass(frozen=True)
class Principal:
    user: str
    role: str  # user | admin | agent | scheduler
    machine: str | None = None  # an agent's machine name, "*" for any; None for users and admins

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    def speaks_for(self, machine: str) -> bool:
        """May this caller act as the agent of ``machine``? An admin may; an agent only for its own."""
        if self.admin:
            return True
        return self.role == "agent" and self.machine in (ANY_MACHINE, machine)


class Tokens:
    def __init__(self, table: dict[str, Principal]):
        self.table = table

    @classmethod
    def parse(cls, data: Any, source: str = "tokens") -> "Tokens":
        if not isinstance(data, dict):
            raise ConfigFileError(f"{source}: expected a mapping token -> {{user, role}}")
        table = {}
        for i, (token, entry) in enumerate(data.items()):
            if not isinstance(entry, dict) or not isinstance(entry.get("user"), str):
                raise ConfigFileError(f"{source}: entry {i + 1}: expected "
                                      f"{{user: NAME, role: user|admin|agent|scheduler}}")
            role = entry.get("role", "user")
            if role not in ROLES:
                raise ConfigFileError(f"{source}: entry {i + 1} ({entry['user']}): role must be one of "
                                      f"{', '.join(ROLES)}, got {role!r}")
            machine = entry.get("machine")
            if role == "agent" and not (isinstance(machine, str) and machine):
                raise ConfigFileError(f"{source}: entry {i + 1} ({entry['user']}): an agent token needs "
                                      f"machine: NAME (the one machine it may act for), or machine: \"*\" "
                                      f"for a token any agent may use")
            if role != "agent" and machine is not None:
                raise ConfigFileError(f"{source}: entry {i + 1} ({entry['user']}): only an agent token has "
                                      f"a machine, got role {role}")
            table[str(token)] = Principal(entry["user"], role, machine if role == "agent" else None)
        return cls(table)

    @classmethod
    def load(cls, path: str | Path) -> "Tokens":
        return cls.parse(read_yaml(path, "tokens"), str(path))

    def lookup(self, token: str) -> Principal | None:
        return self.table.get(token)


# ---- requests -> principals ------------------------------------------------------------------------

BEARER_HINT = "expected the header 'Authorization: Bearer <token>'"
AGENT_ONLY = "an agent token may only register its machine"

# Declares the scheme in the OpenAPI description; the token itself is read by ``Authenticator``
# (auto_error=False: a missing or malformed header is answered with corral's own 401 body).
bearer = HTTPBearer(auto_error=False, description="a token of the master's tokens file (role user, admin or agent)")


class Unauthorized(AdmissionError):
    """No token, a malformed header or an unknown token: 401, field ``authorization``."""

    def __init__(self, message: str):
        super().__init__(401, [("authorization", message)], "unauthorized")


def forbidden(message: str) -> AdmissionError:
    """A known caller that may not do this: 403, field ``authorization``."""
    return AdmissionError(403, [("authorization", message)], "forbidden")


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization`` header value, or None if it is not ``Bearer <token>``."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def principal_of(tokens: Tokens, header: str) -> Principal:
    """Who sends ``header`` (the ``Authorization`` value); :class:`Unauthorized` if nobody known."""
    token = bearer_token(header)
    if token is None:
        raise Unauthorized(BEARER_HINT)
    found = tokens.lookup(token)
    if found is None:
        raise Unauthorized("unknown token")
    return found


def user_of(tokens: Tokens, header: str) -> Principal:
    """A user or an admin: an agent token is forbidden everything but registering its machine."""
    who = principal_of(tokens, header)
    if who.role == "agent":
        raise forbidden(AGENT_ONLY)
    if who.role == "scheduler":
        raise forbidden("a scheduler token may only read snapshots and commit plans (/api/v1/schedulers)")
    return who


def may_change(who: Principal, owner: str) -> None:
    """A user changes only their own jobs; an admin changes anyone's. Forbidden otherwise."""
    if not who.admin and who.user != owner:
        raise forbidden(f"user {who.user} may not change jobs of user {owner}")


def may_register(who: Principal, through_agents: bool) -> None:
    """Registering a machine: an agent (or admin) token on the agents' route, an admin token on
    the machines route."""
    if through_agents and who.role not in ("agent", "admin"):
        raise forbidden("registering a machine needs an agent (or admin) token")
    if not through_agents and not who.admin:
        raise forbidden("registering a machine through the API needs an admin token")


def may_speak_for(who: Principal, machine: str, field: str) -> None:
    """An agent acts only for the machine its token is bound to: 403 naming ``field`` (where the
    request carries the machine's name) otherwise."""
    if not who.speaks_for(machine):
        raise AdmissionError(403, [(field, f"the token of {who.user} is bound to machine {who.machine}, "
                                           f"not {machine}")], "forbidden")


def may_read_secrets(who: Principal, owner: str) -> bool:
    """A job's env values and its tasks' logs: for its owner and admins only."""
    return who.admin or (who.role == "user" and who.user == owner)


class Authenticator:
    """FastAPI dependencies resolving the caller of a request from ``tokens``.

    ``Depends(auth.anyone)`` is any known caller, ``Depends(auth.user)`` a user or an admin. Both
    carry the bearer scheme into the OpenAPI description; both read the raw header exactly as
    the submit fast path does (:func:`principal_of`)."""

    def __init__(self, tokens: Tokens):
        self.tokens = tokens

    def anyone(self, request: Request,
               _credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        return principal_of(self.tokens, request.headers.get("authorization", ""))

    def user(self, request: Request,
             _credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        return user_of(self.tokens, request.headers.get("authorization", ""))


def check_machine_certificate(master: Any, scope: dict, machine: str, role: str) -> None:
    """With TLS (``master.agent_certificates``), an agent speaks for the machine its client
    certificate names and no other, and only with an agent's certificate (its role ``agent``:
    a master's or an etcd member's certificate of the same name is not one); raises
    AdmissionError 403 otherwise."""
    if not getattr(master, "agent_certificates", False) or role != "agent":
        return
    from corral.tls import peer_name, peer_role

    named, cert_role = peer_name(scope), peer_role(scope)
    if named != machine:
        why = (f"the agent's client certificate names machine {named!r}, not {machine!r}" if named
               else "an agent must present its machine's client certificate")
        raise AdmissionError(403, [("certificate", why)], "forbidden")
    if cert_role != "agent":
        raise AdmissionError(403, [("certificate", f"the client certificate for {named!r} has role "
                                                   f"{cert_role!r}, not 'agent'")], "forbidden")
