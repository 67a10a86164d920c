"""The cell's fair shares as the API shows them: per user and group, dominant share, weight,
running and pending tasks (``GET /api/v1/shares``, ``corral shares``).

Read-only, under the master's lock: usage comes from the cell view's per-user
counts (what the queue order reads), task counts from one pass over the tasks.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from corral.model.job import TaskState
from corral.model.resources import DIMS
from corral.sched.shares import ShareConfig, share_table


class ShareView(BaseModel):
    name: str
    kind: str = Field(description="user or group")
    group: str | None = Field(None, description="the user's group, if it is in one")
    weight: float
    dominant_share: float = Field(description="the largest share of a resource the tasks hold, divided by weight")
    share: float = Field(description="the same, not divided by weight")
    dominant_resource: str = Field(description="the resource of that share ('-' when nothing is held)")
    running: int
    pending: int


class SharesView(BaseModel):
    order: str = Field(description="the queue order inside a priority band: drf or round-robin")
    capacity: dict[str, int] = Field(description="the cell's capacity per resource, the shares' denominator")
    groups: list[ShareView]
    users: list[ShareView]


def shares_view(state: Any, scheduler: Any) -> SharesView:
    config: ShareConfig = getattr(scheduler, "shares", None) or ShareConfig()
    view = state.view
    usage = {user: view.user_used[row] for user, row in view.user_row.items()}
    running: Counter = Counter()
    pending: Counter = Counter()
    for task in state.tasks.values():
        job = state.jobs.get(task.job)
        if job is None:
            continue
        if task.state is TaskState.RUNNING:
            running[job.user] += 1
        elif task.state is TaskState.PENDING:
            pending[job.user] += 1
    rows = share_table(config, usage, view.total_capacity, DIMS, running, pending)
    out = [ShareView(name=r.name, kind=r.kind, group=r.group, weight=r.weight, dominant_share=round(r.dominant_share, 6),
                     share=round(r.share, 6), dominant_resource=r.dominant_resource, running=r.running,
                     pending=r.pending) for r in rows]
    return SharesView(order=scheduler.user_order.name,
                      capacity=dict(zip(DIMS, (int(x) for x in view.total_capacity))),
                      groups=[s for s in out if s.kind == "group"], users=[s for s in out if s.kind == "user"])
