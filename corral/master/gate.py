"""The follower gate: on a master that does not lead, writes go to the leader and reads say they are stale.

* a write (anything but GET/HEAD), or a read without ``?stale=true``: 307 to
  the leader's URL with the same path and query (clients re-send it there,
  with the same request id), or 503 while no leader is elected;
* a read with ``?stale=true``: served from this follower's warm state, with
  ``X-Corral-Stale: true`` and ``X-Corral-Applied: <seq>`` (how far it has
  applied the log) on the answer;
* ``/healthz`` and ``GET /api/v1/master`` (who is who) always answer here.

A master without replicas (``master.replica`` None) passes everything through.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from corral.master.responses import error_response

PREFIX = "/api/v1"
_ALWAYS = ("/healthz", PREFIX + "/master")


class FollowerGate:
    def __init__(self, app: Any, master: Any):
        self.app, self.master = app, master

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        replica = getattr(self.master, "replica", None)
        if scope["type"] != "http" or replica is None or replica.leading or scope["path"] in _ALWAYS:
            return await self.app(scope, receive, send)
        query = scope.get("query_string", b"").decode("latin-1")
        if scope["method"] in ("GET", "HEAD") and parse_qs(query).get("stale", [""])[-1] in ("true", "1"):
            applied = str(self.master.core.state.seq).encode()

            async def marked(message: dict) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (b"x-corral-stale", b"true"),
                                          (b"x-corral-applied", applied)]
                await send(message)
            return await self.app(scope, receive, marked)
        leader = replica.leader_url()
        if not leader or leader.rstrip("/") == replica.url.rstrip("/"):
            response = error_response(503, "unavailable", [("master", "this master is a follower and no leader is "
                                                            "elected yet; try again shortly (reads: ?stale=true)")])
        else:
            location = leader.rstrip("/") + scope["path"] + (f"?{query}" if query else "")
            response = error_response(307, "redirect", [("master", f"this master is a follower; the leader is "
                                                         f"{leader}")], headers={"location": location})
        await response(scope, receive, send)
