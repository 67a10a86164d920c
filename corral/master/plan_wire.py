"""Snapshots and plans over the wire, for schedulers that run as their own process (``corral scheduler``).

A profile's snapshot is the cell state as a checkpoint holds it (``CellState.to_dict``) with the
profile's runnable tasks: each with its transition count (its token: changed means stale) and the
machines it failed on (it goes elsewhere first). The external scheduler rebuilds the state from it
(``rebuilt``), plans on its view with its own ``Scheduler`` and sends the plan back (``plan_body``);
the master turns the body into a ``Round`` and a ``Plan`` (``plan_from_body``) and commits it as it
commits its own threads' plans: every placement is checked again against the live state (the
snapshot's view is not the master's, so every placement gets the fit check: a placement conflicts
only if its machine no longer has room for it), a gang all or none. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from corral.master.commit import MACHINE_ATTRIBUTE, Round, name_machines, pending_task
from corral.sched.plan import Placement, Plan, Preemption

MAX_PLACEMENTS = 100_000  # as many as a job may have tasks; the body limit (1 MiB) comes first


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlacementBody(_Strict):
    task: str = Field(min_length=1, max_length=300)
    machine: str = Field(min_length=1, max_length=300)
    gpus: list[int] = Field(default_factory=list, max_length=1024)
    ports: list[int] = Field(default_factory=list, max_length=1024)
    score: float = Field(0.0, allow_inf_nan=False)
    reclaimed: bool = False


class PreemptionBody(_Strict):
    victim: str = Field(min_length=1, max_length=300)
    machine: str = Field(min_length=1, max_length=300)
    by: str = Field(min_length=1, max_length=300)
    reason: str = Field(max_length=2000)


class UnplacedBody(_Strict):
    summary: str = Field(max_length=4000)
    record: dict[str, Any] = Field(default_factory=dict)


class PlanBody(_Strict):
    """``POST /api/v1/schedulers/{profile}/plans``: a plan made on that profile's snapshot."""

    seq: int = Field(ge=0, description="the snapshot's event sequence number")
    mark: int = Field(-1, ge=-1, description="the snapshot's highest machine version (its pending reasons')")
    tokens: dict[str, int] = Field(description="each planned task's token from the snapshot", max_length=MAX_PLACEMENTS)
    placements: list[PlacementBody] = Field(default_factory=list, max_length=MAX_PLACEMENTS)
    preemptions: list[PreemptionBody] = Field(default_factory=list, max_length=MAX_PLACEMENTS)
    unplaced: dict[str, UnplacedBody] = Field(default_factory=dict, max_length=MAX_PLACEMENTS)
    in_allocs: list[str] = Field(default_factory=list, max_length=MAX_PLACEMENTS)
    attempt: int = Field(0, ge=0, le=1000, description="0: the first plan of a round; n: its n-th retry")


class _SentExplanation:
    """An unplaced task's explanation as the external scheduler sent it (what commit reads of one)."""

    def __init__(self, body: UnplacedBody):
        self.body = body

    def summary(self) -> str:
        return self.body.summary

    def to_dict(self) -> dict[str, Any]:
        return self.body.record


def snapshot_body(state: Any, rnd: Round, profile: str) -> dict[str, Any]:
    """The answer to ``GET /api/v1/schedulers/{profile}/snapshot`` (under the master's lock)."""
    pending = []
    for p in rnd.pending:
        tried = [v for c in p.request.constraints if c.attribute == MACHINE_ATTRIBUTE for v in c.values]
        pending.append({"task": p.id, "token": rnd.tokens[p.id], "tried": tried})
    return {"profile": profile, "seq": state.seq, "mark": rnd.mark, "pending": pending,
            "in_allocs": list(rnd.in_allocs), "state": without_secrets(state.to_dict())}


def without_secrets(d: dict[str, Any]) -> dict[str, Any]:
    """A state dict whose jobs' env values are blanked (the names stay): a scheduler places tasks,
    it never needs what they run with (docs/security.md). ``d`` is a fresh dict: changed in place."""
    for job in d.get("jobs", {}).values():
        for spec in (job.get("spec"), job.get("previous_spec"), *job.get("old_specs", {}).values()):
            if isinstance(spec, dict) and isinstance(spec.get("env"), dict):
                spec["env"] = dict.fromkeys(spec["env"], "")
    return d


def rebuilt(body: dict[str, Any]) -> tuple[Any, Any, list]:
    """``(state, view, pending)`` from a snapshot body: what an external scheduler plans on."""
    from corral.master.state import CellState

    state = CellState.from_dict(body["state"])
    view = state.view
    pending = [pending_task(state, state.tasks[t["task"]], t["tried"]) for t in body["pending"]]
    if any(t["tried"] for t in body["pending"]):
        name_machines(view)
    return state, view, pending


def plan_body(snapshot: dict[str, Any], plan: Plan, attempt: int = 0) -> dict[str, Any]:
    """The body to post for ``plan``, made on ``snapshot`` (a snapshot body)."""
    tokens = {t["task"]: t["token"] for t in snapshot["pending"]}
    return {"seq": snapshot["seq"], "attempt": attempt, "mark": snapshot["mark"], "tokens": tokens,
            "in_allocs": snapshot["in_allocs"],
            "placements": [{"task": p.task_id, "machine": p.machine, "gpus": list(p.gpus), "ports": list(p.ports),
                            "score": float(p.score), "reclaimed": p.reclaimed} for p in plan.placements],
            "preemptions": [{"victim": v.victim, "machine": v.machine, "by": v.by, "reason": v.reason}
                            for v in plan.preemptions],
            "unplaced": {name: {"summary": e.summary(), "record": e.to_dict()} for name, e in plan.unplaced.items()}}


def plan_from_body(body: PlanBody, owned: Any) -> tuple[Round, Plan]:
    """The round and plan to commit for ``body``; ``owned(task)`` says whether the profile may place
    that task. Raises ValueError(field, message) for a plan that is not the profile's to make."""
    for i, p in enumerate(body.placements):
        if p.task not in body.tokens:
            raise PlanError(f"placements[{i}].task", f"{p.task} has no token: it was not in the snapshot")
        if not owned(p.task):
            raise PlanError(f"placements[{i}].task", f"{p.task} is not a pending task of this profile")
    for name in body.unplaced:
        if not owned(name):
            raise PlanError(f"unplaced.{name}", f"{name} is not a pending task of this profile")
    for i, name in enumerate(body.in_allocs):
        if not owned(name):
            raise PlanError(f"in_allocs[{i}]", f"{name} is not a pending task of this profile")
    placed = {p.task for p in body.placements}
    for i, v in enumerate(body.preemptions):
        if v.by not in placed:
            raise PlanError(f"preemptions[{i}].by", f"{v.by} is not placed by this plan")
    plan = Plan(placements=[Placement(p.task, p.machine, tuple(p.gpus), p.score, 0, tuple(p.ports), p.reclaimed)
                            for p in body.placements],
                preemptions=[Preemption(v.victim, v.machine, v.by, v.reason) for v in body.preemptions],
                unplaced={name: _SentExplanation(u) for name, u in body.unplaced.items()})
    rnd = Round(view=None, pending=[], tokens=dict(body.tokens), versions=None, lineage=None, mark=body.mark,
                in_allocs=list(body.in_allocs))
    return rnd, plan


class PlanError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field, self.message = field_name, message
