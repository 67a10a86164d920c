"""``POST /api/v1/jobs/{job}/rollback``: roll a job back to its spec before its last update.

The job's owner or an admin may; the answer is the job as it is now and why it
rolls back (corral.master.rollout). 404 for an unknown job, 409 for an ended
job or one never updated. The rollout itself shows in ``GET /api/v1/jobs/{job}``
(``rollout``) and ``corral status``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from corral.master.auth import Principal, may_change
from corral.master.commands import Rollback
from corral.master.naming import resolve_job
from corral.master.responses import RollbackReply, error_responses


def rollout_router(master: Any, changer: Any) -> APIRouter:
    """The route, for the master's app; ``changer`` authenticates a user or an admin."""
    router = APIRouter()
    core = master.core

    @router.post("/api/v1/jobs/{job}/rollback", summary="Roll a job back to its spec before its last update",
                 response_model=RollbackReply, responses=error_responses(400, 401, 403, 404, 409, 413, 503))
    async def rollback(job: str, who: Principal = Depends(changer)) -> RollbackReply:
        jid = resolve_job(job, who.user)
        with master.lock:
            record = core.job(jid)
        may_change(who, record.user)
        return RollbackReply(**await master.aexecute(Rollback(jid)))

    return router
