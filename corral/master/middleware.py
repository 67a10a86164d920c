"""The master API's ASGI layers around the FastAPI app: the catch-all for bugs, the bound on request
bodies and the submit fast path."""

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


MAX_BODY = 1 << 20  # a job spec or a machine's registration is a few KiB; 1 MiB leaves ample room


class BodyTooLarge(AdmissionError):
    """A request body over the limit: 413 naming it."""

    def __init__(self, limit: int):
        super().__init__(413, [("body", f"expected at most {limit} bytes (the master's limit on a request body)")],
                         "invalid")


class BodyLimit:
    """Every request's body is at most ``limit`` bytes: a larger ``Content-Length`` is answered 413
    before a byte is read; a body without one (chunked) is counted as it arrives and refused once
    past the limit, so no route ever buffers more than ``limit`` bytes of one request."""

    def __init__(self, app: Any, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for key, value in scope["headers"]:
            if key == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    return await self._refuse(scope, receive, send)
        size, started = 0, False

        async def counting_receive() -> dict:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.limit:
                raise BodyTooLarge(self.limit)  # the API's handler answers it; else the except below
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        error = BodyTooLarge(self.limit)
        await error_response(error.status, error.kind, error.errors, headers={"Connection": "close"})(
            scope, receive, send)


class FastSubmit:
    """``POST {path}`` straight to ``submit``, skipping the framework's routing layers (submission
    is the hot path: the benchmark's 1,000/s). Same logic, same answers and errors as the
    documented route, which handles it when this is not installed."""

    MAX_BODY = 1 << 20

    def __init__(self, app: Any, path: str, submit: SubmitFn):
        self.app, self.path, self.submit = app, path, submit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path
                or scope.get("query_string")):  # ?dry_run=... and the like: the documented route
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
