"""What a cell certificate is for: its role, and TLS contexts that accept only a peer of one role.

``corral ca issue --role ROLE`` writes the role as the certificate subject's
organizational unit (``OU=master``, ``OU=agent``, ``OU=etcd``). Every
certificate of the cell is signed by the same CA, so the CA alone says only
"one of ours"; the role says which: an agent talks to a master only if the
master's certificate says ``master`` (``require_peer_role``: checked right
after the handshake, before a byte of the request, its token included, is
sent), an agent answers only masters' client certificates, and the master takes
registrations only from ``agent`` certificates naming the machine.

Light on purpose (no ``cryptography``, no uvicorn): the CLI imports it.
"""

from __future__ import annotations

import ssl
from typing import Any

ROLES = ("master", "agent", "etcd")


def _subject_field(peercert: dict | None, field: str) -> str | None:
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == field:
                return value
    return None


def role_of(peercert: dict | None) -> str | None:
    """The role in ``ssl.SSLSocket.getpeercert()``'s answer (its subject's OU), or None."""
    return _subject_field(peercert, "organizationalUnitName")


def check_role(peercert: dict | None, role: str) -> None:
    """Raise ssl.SSLCertVerificationError unless the verified peer certificate is a ``role``'s."""
    found = role_of(peercert)
    if found != role:
        named = _subject_field(peercert, "commonName")
        raise ssl.SSLCertVerificationError(
            f"the peer's certificate ({named!r}) is {'for a ' + repr(found) if found else 'without a role'}, "
            f"not a {role}'s (issue one with `corral ca issue DIR NAME --role {role}`)")


def require_peer_role(context: ssl.SSLContext, role: str) -> ssl.SSLContext:
    """``context``, changed so that every connection it makes fails its handshake unless the
    server's certificate is a ``role``'s (blocking sockets and asyncio/anyio alike)."""

    class RoleSocket(ssl.SSLSocket):
        def do_handshake(self, *args: Any, **kwargs: Any) -> None:
            super().do_handshake(*args, **kwargs)
            check_role(self.getpeercert(), role)

    class RoleObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            check_role(self.getpeercert(), role)

    context.sslsocket_class = RoleSocket
    context.sslobject_class = RoleObject
    return context
