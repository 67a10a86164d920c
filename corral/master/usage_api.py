"""``/api/v1/usage``: allocation and usage per machine and band, usage over time, users' shares.

Read-only routes (any token) over the master's state and its usage history
(corral.master.usage). Units are corral's: cpu in millicores, memory and disk
in bytes, gpu in milli-GPU (1000 = one whole GPU). ``allocated`` is what the
scheduler reserved for placed tasks (the cell view, per band); ``used`` what
the agents last measured; ``pending`` the limits of tasks still waiting;
``charged`` what the user's live jobs count against quota (all their tasks
at their limits, admission's rule); ``quota`` the limit in that band (null:
no quota file, nothing limited).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from corral.master.errors import AdmissionError
from corral.master.naming import resolve_job
from corral.master.responses import error_responses
from corral.model.job import TaskState
from corral.model.priority import BANDS_HIGH_TO_LOW, Band, band_of
from corral.model.resources import DIMS

READ = error_responses(400, 401, 404)
BANDS = tuple(b.value for b in BANDS_HIGH_TO_LOW)


class Vector(BaseModel):
    cpu: int = Field(0, description="millicores")
    memory: int = Field(0, description="bytes")
    disk: int = Field(0, description="bytes")
    gpu: int = Field(0, description="milli-GPU")


class Used(BaseModel):
    cpu: int = Field(0, description="millicores, as last measured")
    memory: int = Field(0, description="bytes, as last measured")


class MachineSample(BaseModel):
    t: float
    cpu: int
    memory: int
    cpu_allocated: int
    memory_allocated: int


class MachineUsage(BaseModel):
    name: str
    state: str
    capacity: Vector
    allocated: dict[str, Vector] = Field(description="per band (monitoring, production, batch, best-effort)")
    used: dict[str, Used] = Field(description="per band: the measured usage of its tasks here")
    tasks: int


class MachineUsageDetail(MachineUsage):
    history: list[MachineSample] = Field(description="oldest first; bounded")


class MachineUsageList(BaseModel):
    machines: list[MachineUsage]


class TaskSample(BaseModel):
    t: float
    cpu: int
    memory: int


class TaskUsage(BaseModel):
    task: str
    machine: str | None
    history: list[TaskSample] = Field(description="oldest first; bounded")


class JobUsage(BaseModel):
    job: str
    tasks: list[TaskUsage]


class BandShare(BaseModel):
    running: Vector
    pending: Vector
    charged: Vector
    quota: Vector | None


class UserShare(BaseModel):
    user: str
    dominant_share: float = Field(description="the largest fraction of the cell's capacity in any resource that "
                                              "the user's running tasks hold (Dominant Resource Fairness)")
    bands: dict[str, BandShare]


class UserShares(BaseModel):
    capacity: Vector = Field(description="the cell's machines that are up, summed")
    users: list[UserShare]


def _vector(values: Any) -> Vector:
    return Vector(**{d: int(values[i]) for i, d in enumerate(DIMS)})


def _limits(spec: Any) -> tuple[int, int, int, int]:
    r = spec.resources
    return r.cpu, r.memory, r.disk, (r.gpu * r.gpu_milli if r.gpu else 0)


def _last_usage(master: Any, task: Any) -> tuple[int, int]:
    samples = master.usage.task(task.name) if getattr(master, "usage", None) else []
    if samples:
        return samples[-1][1], samples[-1][2]
    agent = task.agent or {}
    usage = (agent.get("usage") or {}) if agent.get("generation") == task.generation else {}
    return int(usage.get("cpu_milli") or 0), int(usage.get("memory_bytes") or 0)


def machine_usage(master: Any, name: str) -> dict[str, Any]:
    """A machine's capacity, allocation and usage per band (caller holds the lock)."""
    state = master.core.state
    record = state.machines.get(name)
    if record is None:
        raise AdmissionError(404, [("machine", f"no machine {name}")], "not_found")
    view = state.view
    at = view.index.get(name)
    allocated = {b: [0, 0, 0, 0] for b in BANDS}
    used = {b: [0, 0] for b in BANDS}
    capacity = [0, 0, 0, 0]
    count = 0
    if at is not None:
        capacity = [int(v) for v in view.capacity[at]]
        for priority in range(view.used.shape[0]):
            band = band_of(priority).value
            allocated[band] = [a + int(v) for a, v in zip(allocated[band], view.used[priority, at])]
        for task_name in view.tasks[at]:
            task = state.tasks.get(task_name)
            if task is None:
                continue
            count += 1
            band = band_of(state.jobs[task.job].spec.priority).value
            cpu, memory = _last_usage(master, task)
            used[band] = [used[band][0] + cpu, used[band][1] + memory]
    return {"name": name, "state": record.state, "capacity": _vector(capacity), "tasks": count,
            "allocated": {b: _vector(v) for b, v in allocated.items()},
            "used": {b: Used(cpu=v[0], memory=v[1]) for b, v in used.items()}}


def user_shares(master: Any) -> UserShares:
    """Every user with a live job: running and pending limits, quota charge and quota per band."""
    state, quotas = master.core.state, master.core.quotas
    view = state.view
    capacity = [int(v) for v in view.capacity.sum(axis=0)] if len(view) else [0] * len(DIMS)
    per_user: dict[str, dict[str, dict[str, list[int]]]] = {}
    for job in state.jobs.values():
        if job.state.ended:
            continue
        bands = per_user.setdefault(job.user, {})
        band = bands.setdefault(band_of(job.spec.priority).value, {"running": [0] * 4, "pending": [0] * 4})
        limits = _limits(job.spec)
        for task in state.tasks_of(job.id):
            key = {TaskState.RUNNING: "running", TaskState.PENDING: "pending"}.get(task.state)
            if key is not None:
                band[key] = [a + b for a, b in zip(band[key], limits)]
    users = []
    for user in sorted(per_user):
        shares = {}
        running_total = [0] * len(DIMS)
        for band in BANDS:
            if band not in per_user[user]:
                continue
            entry = per_user[user][band]
            running_total = [a + b for a, b in zip(running_total, entry["running"])]
            quota, charged = quotas.limit(user, Band(band)), state.usage_of(user, Band(band))
            shares[band] = BandShare(running=_vector(entry["running"]), pending=_vector(entry["pending"]),
                                     charged=_vector(charged), quota=None if quota is None else _vector(quota))
        dominant = max((r / c for r, c in zip(running_total, capacity) if c > 0), default=0.0)
        users.append(UserShare(user=user, dominant_share=round(dominant, 6), bands=shares))
    return UserShares(capacity=_vector(capacity), users=users)


def usage_router(master: Any, caller: Any, prefix: str = "/api/v1") -> APIRouter:
    """The routes; ``caller``: the API's ``Depends`` resolving any known token."""
    router = APIRouter(prefix=prefix + "/usage", tags=["usage"])

    @router.get("/machines", summary="Every machine's capacity, allocation and usage per band",
                response_model=MachineUsageList, responses=READ)
    async def machines(who: Any = caller) -> MachineUsageList:
        with master.lock:
            names = sorted(master.core.state.machines)
            return MachineUsageList(machines=[MachineUsage(**machine_usage(master, n)) for n in names])

    @router.get("/machines/{name}", summary="A machine's allocation and usage per band, and over time",
                response_model=MachineUsageDetail, responses=READ)
    async def machine(name: str, who: Any = caller) -> MachineUsageDetail:
        with master.lock:
            fields = machine_usage(master, name)
        history = [MachineSample(t=s[0], cpu=s[1], memory=s[2], cpu_allocated=s[3], memory_allocated=s[4])
                   for s in master.usage.machine(name)]
        return MachineUsageDetail(**fields, history=history)

    @router.get("/jobs/{job}", summary="The usage over time of a job's tasks", response_model=JobUsage,
                responses=READ)
    async def job(job: str, who: Any = caller) -> JobUsage:
        with master.lock:
            record = master.core.job(resolve_job(job, who.user))
            tasks = [(t.name, t.machine) for t in master.core.state.tasks_of(record.id)]
        return JobUsage(job=record.id, tasks=[
            TaskUsage(task=n, machine=m, history=[TaskSample(t=s[0], cpu=s[1], memory=s[2])
                                                  for s in master.usage.task(n)]) for n, m in tasks])

    @router.get("/users", summary="Users' running and pending allocations, quota charge and quota per band",
                response_model=UserShares, responses=READ)
    async def users(who: Any = caller) -> UserShares:
        with master.lock:
            return user_shares(master)

    return router
