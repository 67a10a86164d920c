"""``GET /api/v1/machines/{machine}/wait``: a machine's wait-time matrix (Apollo §3.2).

For each shape bucket (cpu cores × memory bytes, the bucket's upper corner) the
seconds a task of that shape is expected to wait on the machine before it starts
(corral.master.matrix_wait: running tasks' estimated time left, the copies queued
there). ``null``: it will not start there as far as anyone knows (a shape bigger
than the machine, or room held by work whose end nobody can estimate).
Beside it, what a start costs there once room is found (the agents' measurements,
corral.sched.estimates.startup): ``startup_first_s`` for the first start of a
job's command, ``startup_warm_s`` for later ones (the cell's means where the
machine has none of its own, 0 where no agent measured any); a task's expected
completion there is wait + start-up + runtime. Read-only, any token.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from corral.master.errors import AdmissionError
from corral.master.matrix_wait import MatrixWait
from corral.master.responses import error_responses

READ = error_responses(400, 401, 404)


class MachineWait(BaseModel):
    machine: str
    cpu_buckets: list[float] = Field(description="cores: the upper edge of each row's bucket")
    memory_buckets: list[int] = Field(description="bytes: the upper edge of each column's bucket")
    wait_s: list[list[float | None]] = Field(
        description="wait_s[i][j]: expected seconds before a task of cpu_buckets[i] cores and memory_buckets[j] "
                    "bytes starts there; null: never, as things stand")
    startup_first_s: float = Field(0.0, description="seconds the first start of a job's command costs there "
                                                    "(its agent's measurements, else the cell's; 0: none measured)")
    startup_warm_s: float = Field(0.0, description="seconds a later start of the same command costs there")


def machine_wait(state: Any, clock: Any, machine: str) -> MachineWait:
    if machine not in state.machines:
        raise AdmissionError(404, [("machine", f"no machine {machine}")], "not_found")
    matrix = MatrixWait(state, clock).matrix([machine])
    startups = state.estimates.startups
    rows = matrix.row(machine) if machine in matrix.loads else [[math.inf] * len(matrix.memory_buckets)
                                                                 for _ in matrix.cpu_buckets]  # lost: no room
    return MachineWait(machine=machine, cpu_buckets=list(matrix.cpu_buckets),
                       memory_buckets=list(matrix.memory_buckets),
                       wait_s=[[round(w, 3) if math.isfinite(w) else None for w in row] for row in rows],
                       startup_first_s=round(startups.first_s(machine), 3),
                       startup_warm_s=round(startups.warm_s(machine), 3))


def wait_router(master: Any, caller: Any, prefix: str = "/api/v1") -> APIRouter:
    router = APIRouter(prefix=prefix)

    @router.get("/machines/{machine}/wait", summary="A machine's wait-time matrix: expected wait per shape bucket",
                response_model=MachineWait, responses=READ)
    async def wait(machine: str, who: Any = caller) -> MachineWait:
        with master.lock:
            return machine_wait(master.core.state, master.core.clock, machine)

    return router
