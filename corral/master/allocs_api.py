"""``GET /api/v1/allocs[/{allocset}]``: alloc sets and their allocs, with what their tasks use.

An alloc set is submitted, updated and killed through the jobs routes (its
spec has ``kind: allocset``; it shares the jobs' name space); these routes
read what only allocs have: each alloc's machine, what it holds, what the
tasks in it use and which tasks they are (corral.master.allocs.summary).
Quantities are corral's units: cpu in millicores, memory and disk in bytes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from corral.master import allocs
from corral.master.errors import AdmissionError
from corral.master.naming import resolve_job
from corral.master.responses import AllocSetList, AllocSetView, error_responses


def allocs_router(master: Any, caller: Any, prefix: str = "/api/v1") -> APIRouter:
    """The routes, reading ``master``'s state under its lock."""
    router = APIRouter(prefix=prefix + "/allocs", tags=["allocs"])
    reads = error_responses(400, 401, 404)

    @router.get("", summary="List alloc sets with their allocs", response_model=AllocSetList, responses=reads)
    async def list_allocsets(who: Any = caller, user: str | None = None, all: bool = False) -> AllocSetList:
        with master.lock:
            state = master.core.state
            found = [j for j in state.jobs.values() if j.is_allocset and (user is None or j.user == user)
                     and (all or not j.state.ended)]
            return AllocSetList(allocsets=[AllocSetView(**allocs.summary(state, j)) for j in found], count=len(found))

    @router.get("/{allocset}", summary="One alloc set and its allocs", response_model=AllocSetView, responses=reads)
    async def get_allocset(allocset: str, who: Any = caller) -> AllocSetView:
        with master.lock:
            state = master.core.state
            record = master.core.job(resolve_job(allocset, who.user))
            if not record.is_allocset:
                raise AdmissionError(404, [("allocset", f"{record.id} is a job, not an alloc set")], "not_found")
            return AllocSetView(**allocs.summary(state, record))

    return router
