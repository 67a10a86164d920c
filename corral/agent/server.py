"""The agent's HTTP API (docs/agent-protocol.md) as a FastAPI app.

Every route needs ``Authorization: Bearer <agent token>`` (401 otherwise) and,
with TLS, a master's client certificate (its role ``master``: 403 otherwise;
corral.tls_roles).
Errors have the master API's body, ``{"error": kind, "message": "<field>:
<what was expected>; ...", "errors": [{"field", "message"}]}``, and its
statuses: 400 (``invalid``) for input that does not validate, 401
(``unauthorized``), 404 (``not_found``); a 500 (``internal``) only for a bug.
The app only translates HTTP to runner calls; everything it knows comes from
the ``Agent`` it is handed (see ``daemon.py``).
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.agent import supervisor as sv
from corral.agent.launch import TASK_ID_RULE, LaunchError, parse_launch, valid_task_id
from corral.agent.logs import STREAMS
from corral.agent.metrics import CONTENT_TYPE, AgentMetrics
from corral.agent.ports import port_clashes
from corral.model.validation import error_body, field_errors

if TYPE_CHECKING:
    from corral.agent.daemon import Agent

MAX_TAIL = 100_000


# the master API's error kinds (corral.master.responses.ErrorBody), by status
KINDS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "invalid", 500: "internal"}


class ApiError(Exception):
    """A refusal: ``status`` and ``(field, message)`` pairs; the kind follows the status."""

    def __init__(self, status: int, errors: list[tuple[str, str]]):
        self.status, self.errors = status, errors


def _error(status: int, errors: list[tuple[str, str]], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(KINDS.get(status, "invalid"), errors), status_code=status, headers=headers)


def _check_task_id(task_id: str) -> None:
    if not valid_task_id(task_id):
        raise ApiError(400, [("task_id", f"expected {TASK_ID_RULE}, got {task_id!r}")])


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, [("body", f"not valid JSON: {e}")]) from None


def create_app(agent: "Agent") -> FastAPI:
    app = FastAPI(title=f"corral agent {agent.config.name}", version="1")
    token = agent.config.token.encode()
    masters_only = agent.config.tls is not None
    if masters_only:
        from corral.tls import peer_role  # imported here, not on the event loop of the first request

    # async: a plain def dependency is run on a worker thread, a hop (and a wait for the GIL) on
    # every request, the master's launches and polls among them, for a compare of two strings.
    async def authorized(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            raise ApiError(401, [("authorization", "expected 'Bearer <agent token>'")])
        if masters_only:  # any certificate of the cell gets through the handshake; only a master's here
            role = peer_role(request.scope)
            if role != "master":
                raise ApiError(403, [("certificate", f"expected a master's client certificate, got "
                                                     f"{'one for a ' + repr(role) if role else 'one without a role'}")])

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.errors, {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, field_errors(exc.errors(), default="request", request=True))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, [("path" if exc.status_code in (404, 405) else "request", str(exc.detail))])

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:  # a bug, not bad input
        return _error(500, [("agent", f"internal error: {type(exc).__name__}: {exc}")])

    auth = [Depends(authorized)]
    metrics = AgentMetrics(agent)

    # Prometheus' text format, for scrapers without the agent token: counts and usage, no secrets.
    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.rendered(), media_type=CONTENT_TYPE)

    @app.get("/v1/state", dependencies=auth)
    async def state(since: str | None = None, incarnation: str | None = None) -> JSONResponse:
        # On the event loop and straight to JSON: the master polls this every second or two, and a
        # worker thread plus FastAPI's encoder of the nested dicts cost more than the state itself.
        if since is not None and not (since.isdigit() and len(since) <= 18):
            raise ApiError(400, [("since", f"expected the seq of an earlier answer (a whole number), got {since!r}")])
        if since is not None and incarnation is None:
            raise ApiError(400, [("incarnation", "expected the incarnation of the answer that 'since' comes from")])
        agent.note_poll()
        return JSONResponse(agent.state(None if since is None else int(since), incarnation))

    @app.get("/v1/tasks/{task_id}", dependencies=auth)
    def get_task(task_id: str) -> dict[str, Any]:
        _check_task_id(task_id)
        status = agent.runner.status(task_id)
        if status is None:
            raise ApiError(404, [("task_id", f"no task {task_id!r} on this machine")])
        return status

    @app.put("/v1/tasks/{task_id}", dependencies=auth)
    async def put_task(task_id: str, request: Request) -> dict[str, Any]:
        _check_task_id(task_id)
        body = await _json_body(request)
        try:
            launch = parse_launch(body, task_id)
        except LaunchError as e:
            raise ApiError(400, e.errors) from None
        clashes = port_clashes(launch, agent.runner.supervisor.live_tasks())
        if clashes:
            raise ApiError(409, [("ports", "; ".join(clashes))])
        await run_in_threadpool(agent.runner.submit, sv.Launch(launch))  # spawning blocks briefly
        return agent.runner.status(task_id) or {}

    @app.delete("/v1/tasks/{task_id}", dependencies=auth)
    def delete_task(task_id: str) -> dict[str, Any]:
        _check_task_id(task_id)
        agent.runner.submit(sv.Kill(task_id))
        return agent.runner.status(task_id) or {"task_id": task_id, "state": "absent"}

    @app.put("/v1/assignments", dependencies=auth)
    async def put_assignments(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("task_ids"), list):
            raise ApiError(400, [("task_ids", "expected {\"task_ids\": [task id, ...]}")])
        ids = body["task_ids"]
        for i, task_id in enumerate(ids):
            if not isinstance(task_id, str) or not valid_task_id(task_id):
                raise ApiError(400, [(f"task_ids.{i}", f"expected {TASK_ID_RULE}, got {task_id!r}")])
        before = {t["task_id"] for t in agent.runner.statuses() if t["state"] in ("starting", "running", "backoff")}
        await run_in_threadpool(agent.runner.submit, sv.Assign(frozenset(ids)))
        return {"killing": sorted(before - set(ids)), "tasks": agent.runner.statuses()}

    @app.put("/v1/reclaimed", dependencies=auth)
    async def put_reclaimed(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("cpu_milli"), dict):
            raise ApiError(400, [("cpu_milli", "expected {\"cpu_milli\": {task id: millicores, ...}}")])
        allowed = body["cpu_milli"]
        for task_id, cpu in allowed.items():
            if not valid_task_id(task_id):
                raise ApiError(400, [(f"cpu_milli.{task_id}", f"expected a task id ({TASK_ID_RULE})")])
            if not isinstance(cpu, int) or isinstance(cpu, bool) or not 0 <= cpu <= 100_000_000:
                raise ApiError(400, [(f"cpu_milli.{task_id}", f"expected millicores in 0..100000000, got {cpu!r}")])
        quotas = await run_in_threadpool(agent.reclaimed.set, allowed)
        return {"cpu_quota_us": quotas}

    @app.get("/v1/tasks/{task_id}/logs", dependencies=auth, response_class=PlainTextResponse)
    def logs(task_id: str, stream: str = "stdout", tail: str = "100") -> PlainTextResponse:
        _check_task_id(task_id)
        if stream not in STREAMS:
            raise ApiError(400, [("stream", f"expected one of {', '.join(STREAMS)}, got {stream!r}")])
        if not tail.isdigit() or not 1 <= int(tail) <= MAX_TAIL:
            raise ApiError(400, [("tail", f"expected a whole number of lines in 1..{MAX_TAIL}, got {tail!r}")])
        text = agent.runner.logs(task_id, stream, int(tail))
        if text is None:
            raise ApiError(404, [("task_id", f"no task {task_id!r} on this machine")])
        return PlainTextResponse(text)

    return app
