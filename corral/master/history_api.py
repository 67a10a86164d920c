"""``GET /api/v1/events``: the cell's event history (corral.master.history), paged or streamed.

Filters: ``job`` (``NAME`` is the caller's, or ``NAME.USER``), ``user``,
``machine``, ``type`` (one or several, comma-separated), ``since`` (an RFC
3339 time, or seconds since the epoch), ``limit``. Pages: pass a page's
``next`` as ``cursor`` for the events after it. ``watch=true`` streams
instead: one ``EventRecord`` a line (``application/x-ndjson``) as events are
logged, after the history from ``cursor`` or ``since`` when one is given
(else only new events), with ``{}`` as a keep-alive line every
``KEEPALIVE_S`` seconds, until the client leaves.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from corral.master.errors import AdmissionError
from corral.master.events import EVENT_TYPES
from corral.master.history import parse_time
from corral.master.naming import resolve_job
from corral.master.responses import EventPage, error_responses
from corral.model.spec import NAME, NAME_RULE

PREFIX = "/api/v1"
POLL_S = 0.2
KEEPALIVE_S = 15.0


def _types(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    wanted = frozenset(t.strip() for t in text.split(",") if t.strip())
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise AdmissionError(400, [("type", f"expected one or more of {', '.join(sorted(EVENT_TYPES))}, "
                                            f"got {', '.join(unknown)}")])
    return wanted


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise AdmissionError(400, [("since", f"expected an RFC 3339 time such as 2026-01-31T12:00:00Z "
                                             f"(or seconds since the epoch), got {text!r}")]) from None


def _job(text: str | None, user: str) -> str | None:
    """The ``job`` filter as a job id; a malformed one is a 400, never read as "every job"."""
    if text is None:
        return None
    parts = text.split(".")
    if len(parts) > 2 or not all(NAME.match(p) for p in parts):
        raise AdmissionError(400, [("job", f"expected a job as NAME or NAME.USER ({NAME_RULE}), got {text!r}")])
    return resolve_job(text, user)


def history_router(master: Any, caller: Callable[..., Any]) -> APIRouter:
    router = APIRouter()

    @router.get(PREFIX + "/events", summary="The cell's event history (cursor paging; watch=true streams)",
                response_model=EventPage, responses={
                    200: {"content": {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/EventRecord"}}},
                          "description": "a page (JSON), or with watch=true one EventRecord a line"},
                    **error_responses(400, 401, 503)})
    async def events(request: Request, who: Any = Depends(caller), job: str | None = None, user: str | None = None,
                     machine: str | None = None, type_: str | None = Query(None, alias="type"),
                     since: str | None = None, cursor: int | None = Query(None, ge=0),
                     limit: int = Query(1000, ge=1, le=10_000), watch: bool = False) -> Any:
        filters: dict[str, Any] = {"job": _job(job, who.user), "user": user,
                                   "machine": machine, "types": _types(type_), "since": _since(since)}
        history = master.history
        if not watch:
            with master.lock:
                found, after = history.query(**filters, cursor=cursor or 0, limit=limit)
                return EventPage(events=found, next=after, oldest=history.first_seq, last=history.last_seq)
        if cursor is None and filters["since"] is None:
            with master.lock:
                cursor = history.last_seq
        return StreamingResponse(_stream(master, request, filters, cursor or 0), media_type="application/x-ndjson")

    return router


async def _stream(master: Any, request: Request, filters: dict[str, Any], cursor: int):
    quiet_since = time.monotonic()
    while True:
        with master.lock:
            found, cursor = master.history.query(**filters, cursor=cursor, limit=1000)
        if found:
            quiet_since = time.monotonic()
            yield "".join(json.dumps(e) + "\n" for e in found)
            continue
        if time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield "{}\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_S)
