"""Who is using the UI: the bearer token in a cookie, and the form token that guards every change.

The login form takes a token of the master's tokens file; the UI keeps it in
the cookie ``corral_token``: ``Path=/ui`` (the API never sees it as a
cookie: the API reads only ``Authorization``), ``HttpOnly`` (the UI's pages
call the API server-side, so no script needs the token, and an injected one
could not read it), ``SameSite=Strict`` (no other site's page can make the
browser send it), ``Secure`` when served over HTTPS.

Every POST of the UI carries ``csrf``: an HMAC of the session's token under a
key drawn when the master starts, so a page from elsewhere cannot forge one;
it also must come from the UI's own origin when the browser says where it
came from (``Origin``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from corral.master.auth import Principal, Tokens

COOKIE = "corral_token"
MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    token: str
    who: Principal
    csrf: str


class Sessions:
    def __init__(self, tokens: Tokens, key: bytes | None = None):
        self.tokens = tokens
        self.key = key or os.urandom(32)

    def csrf_of(self, token: str) -> str:
        return hmac.new(self.key, token.encode(), hashlib.sha256).hexdigest()[:40]

    def lookup(self, token: str) -> Principal | None:
        """A user's or an admin's token (agents have no business in the UI)."""
        who = self.tokens.lookup(token) if token else None
        return who if who is not None and who.role in ("user", "admin") else None

    def of(self, request: Request) -> Session | None:
        token = request.cookies.get(COOKIE, "")
        who = self.lookup(token)
        return Session(token, who, self.csrf_of(token)) if who else None

    def form_ok(self, request: Request, session: Session, csrf: str) -> bool:
        """A change may proceed: the form token is this session's and the origin is ours."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
            return False
        return hmac.compare_digest(csrf or "", session.csrf)


def set_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=MAX_AGE_S, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
