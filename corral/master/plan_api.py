"""The scheduler profiles over HTTP: list them, and let an external scheduler plan and commit.

* ``GET /api/v1/schedulers`` (any known token): every profile with the jobs it owns, its rounds,
  placements, conflicts, retries and backoff (``corral schedulers``).
* ``GET /api/v1/schedulers/{profile}/snapshot`` (an admin or a ``scheduler`` token): the cell
  state and the profile's runnable tasks (plan_wire.py). Only for a profile marked
  ``external: true``: the master runs the others itself (409).
* ``POST /api/v1/schedulers/{profile}/plans`` (the same): commit a plan made on such a snapshot;
  the answer says what was placed, which placements went stale (plan them again on a new
  snapshot) and ``backoff_s``, how long to wait before the next round. A body that is not the
  profile's to send (a task of another profile, a task not in the snapshot) is 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from corral.master.auth import Principal, forbidden
from corral.master.errors import AdmissionError
from corral.master.plan_wire import PlanBody, PlanError, plan_from_body, snapshot_body
from corral.master.responses import error_responses


class BackoffInfo(BaseModel):
    streak: int
    remaining_s: float


class SchedulerInfo(BaseModel):
    name: str
    policy: str | None
    bands: list[str]
    appclasses: list[str]
    external: bool
    jobs: int
    pending_tasks: int
    rounds: int
    placements: int
    conflicts: int
    retries: int
    preempted: int
    backoff: BackoffInfo


class SchedulersReply(BaseModel):
    schedulers: list[SchedulerInfo]


class SnapshotPending(BaseModel):
    task: str
    token: int
    tried: list[str]


class SnapshotReply(BaseModel):
    profile: str
    seq: int
    mark: int
    pending: list[SnapshotPending]
    in_allocs: list[str]
    state: dict[str, Any]
    policy: str
    backoff_s: float


class PlanReply(BaseModel):
    placed: int
    stale: list[str]
    preempted: int
    unplaced: int
    backoff_s: float


def plans_router(master: Any, anyone: Any) -> APIRouter:
    """The routes, for the master's app; ``anyone`` authenticates any known token."""
    router = APIRouter()
    core = master.core

    def planner(who: Principal = Depends(anyone)) -> Principal:
        if who.role not in ("admin", "scheduler"):
            raise forbidden("reading snapshots and committing plans needs an admin or a scheduler token")
        return who

    def external(profile: str) -> None:
        found = core.profiles.profiles.by_name.get(profile)
        if found is None:
            raise AdmissionError(404, [("profile", f"no scheduler profile {profile!r}; profiles: "
                                                   f"{', '.join(core.profiles.profiles.by_name)}")], "not_found")
        if not found.external:
            raise AdmissionError(409, [("profile", f"profile {profile!r} is run by the master itself; mark it "
                                                   f"external: true in the cell configuration to run it apart")],
                                 "conflict")

    @router.get("/api/v1/schedulers", summary="The scheduler profiles and what each did",
                response_model=SchedulersReply, responses=error_responses(400, 401))
    def schedulers(who: Principal = Depends(anyone)) -> SchedulersReply:
        with master.lock:
            return SchedulersReply(schedulers=core.profiles.describe())

    @router.get("/api/v1/schedulers/{profile}/snapshot", summary="A snapshot for an external scheduler profile",
                response_model=SnapshotReply, responses=error_responses(400, 401, 403, 404, 409))
    def snapshot(profile: str, who: Principal = Depends(planner)) -> dict[str, Any]:
        external(profile)
        with master.lock:
            rnd = core.snapshot(keep=core.profiles.keep(profile))
            rnd.view.release()  # the external scheduler plans on its own copy, rebuilt from the state
            body = snapshot_body(core.state, rnd, profile)
            body["backoff_s"] = core.profiles.stats[profile].backoff.remaining(core.clock.now())
            body["policy"] = core.profiles.profiles.by_name[profile].policy or core.scheduler.config.policy
        return body

    @router.post("/api/v1/schedulers/{profile}/plans", summary="Commit a plan an external scheduler made",
                 response_model=PlanReply, responses=error_responses(400, 401, 403, 404, 409, 413, 503))
    async def commit(profile: str, body: PlanBody, who: Principal = Depends(planner)) -> PlanReply:
        external(profile)
        keep = core.profiles.keep(profile)
        state = core.state

        def owned(name: str) -> bool:
            task = state.tasks.get(name)
            return task is not None and (keep is None or keep(state.jobs[task.job]))

        with master.lock:
            try:
                rnd, plan = plan_from_body(body, owned)
            except PlanError as e:
                raise AdmissionError(400, [(e.field, e.message)]) from None
        reply, durable = master.commit_plan(profile, rnd, plan, retry=body.attempt > 0)
        await master.adurable(durable)
        return PlanReply(**reply)

    return router
