"""The master API's ASGI layers around the FastAPI app: the catch-all for bugs and the submit fast path."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse

from corral.master.errors import AdmissionError
from corral.master.responses import error_response
from corral.master.service import MasterUnavailable

log = logging.getLogger(__name__)

# (authorization header, request id or None, raw body) -> the core's reply
SubmitFn = Callable[[str, "str | None", bytes], Awaitable[dict[str, Any]]]


class CatchAll:
    """The catch-all for true bugs: log the traceback, answer a JSON 500, keep the connection."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal", [("master", f"internal error ({type(exc).__name__}); "
                                                                   "see the master's log")])
            await response(scope, receive, send)


class FastSubmit:
    """``POST {path}`` straight to ``submit``, skipping the framework's routing layers (submission
    is the hot path: the benchmark's 1,000/s). Same logic, same answers and errors as the
    documented route, which handles it when this is not installed."""

    MAX_BODY = 1 << 20

    def __init__(self, app: Any, path: str, submit: SubmitFn):
        self.app, self.path, self.submit = app, path, submit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.MAX_BODY:
                return await error_response(413, "invalid", [("body", f"expected at most {self.MAX_BODY} bytes")])(
                    scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        try:
            reply = await self.submit(headers.get("authorization", ""),
                                      headers.get("x-request-id") or headers.get("idempotency-key"), b"".join(chunks))
        except AdmissionError as e:
            response = error_response(e.status, e.kind, e.errors)
        except MasterUnavailable as e:
            response = error_response(503, "unavailable", [("master", str(e))])
        else:
            response = JSONResponse(reply, status_code=200 if reply.get("duplicate") else 201)
        await response(scope, receive, send)
