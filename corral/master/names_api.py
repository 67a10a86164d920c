"""``GET /api/v1/names/{job}``: a job's endpoints, once or as a stream of changes (``watch=true``).

The answer is the job's DNS name and its running tasks with their machine,
address and named ports (corral.master.names, the records the DNS responder
serves). With ``watch=true`` the reply is newline-delimited JSON: the current
endpoints at once, then a line each time they change (a task placed, moved,
ended, restarted on new ports), until the job has ended or the client goes
away. Between lines the stream checks the state's event counter only, so a
watcher costs nothing while the cell is quiet; ``timeout_s`` bounds a watch.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from corral.master.names import endpoints, job_name
from corral.master.naming import resolve_job
from corral.master.responses import error_responses
from corral.model.job import JobState

WATCH_CHECK_S = 0.05  # how often a watch looks at the state's event counter


class EndpointReply(BaseModel):
    task: str = Field(description="INDEX.JOB.USER.CELL")
    index: int
    machine: str
    address: str = Field(description="the machine's IPv4 address (empty if its agent address is not one)")
    ports: dict[str, int] = Field(description="the task's named ports")


class NamesReply(BaseModel):
    job: str
    name: str = Field(description="the job's DNS name, JOB.USER.CELL")
    state: str
    endpoints: list[EndpointReply]


def names_reply(state: Any, job_id: str) -> dict[str, Any]:
    job = state.jobs[job_id]
    return {"job": job_id, "name": job_name(job_id, state.cell), "state": job.state.value,
            "endpoints": [e.to_dict() for e in endpoints(state, job_id)]}


def names_router(master: Any, caller: Any, prefix: str = "/api/v1") -> APIRouter:
    """The route; ``caller``: the API's ``Depends`` resolving any known token."""
    router = APIRouter(prefix=prefix + "/names", tags=["names"])

    def current(job_id: str) -> tuple[int, dict[str, Any]]:
        with master.lock:
            state = master.core.state
            return state.seq, names_reply(state, job_id)

    @router.get("/{job}", summary="A job's running tasks and their named ports; watch=true streams changes",
                response_model=NamesReply, responses=error_responses(400, 401, 404))
    async def names(job: str, request: Request, who: Any = caller,
                    watch: bool = Query(False, description="stream NDJSON: now, then each change"),
                    timeout_s: float = Query(3600.0, gt=0, le=86400, description="end a watch after this long")):
        with master.lock:
            job_id = master.core.job(resolve_job(job, who.user)).id  # 400 / 404 naming the field
        seq, reply = current(job_id)
        if not watch:
            return reply
        return StreamingResponse(_watch(job_id, seq, reply, request, timeout_s), media_type="application/x-ndjson")

    async def _watch(job_id: str, seq: int, reply: dict, request: Request, timeout_s: float) -> AsyncIterator[bytes]:
        deadline = time.monotonic() + timeout_s
        yield (json.dumps(reply) + "\n").encode()
        while not JobState(reply["state"]).ended and time.monotonic() < deadline:
            await asyncio.sleep(WATCH_CHECK_S)
            if await request.is_disconnected():
                return
            if master.core.state.seq == seq:  # an int read: nothing happened, no lock needed
                continue
            seq, now = current(job_id)
            if now != reply:
                reply = now
                yield (json.dumps(reply) + "\n").encode()

    return router
