"""Host ports the task needs must be free on the machine: its fixed ports, and enough free ports
of the dynamic range for the ones it leaves to the scheduler (picked by :func:`pick_ports`)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from corral.model.ports import DYNAMIC_PORTS, free_dynamic, pick_free
from corral.sched.checkers.base import Checker
from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest


def pick_ports(view, machine: int, req: TaskRequest) -> tuple[int, ...]:
    """The dynamic ports a task of ``req`` gets on ``machine`` (the lowest free ones; () if none asked)."""
    res = req.resources
    if not res.dynamic_ports:
        return ()
    ports = pick_free(view.ports[machine], res.ports, res.dynamic_ports)
    if ports is None:  # the checker said it fits: a caller skipped it
        raise ValueError(f"{view.names[machine]} has fewer than {res.dynamic_ports} free dynamic ports")
    return ports


def _dynamic_room(used: set[int], req: TaskRequest) -> bool:
    res = req.resources
    if not res.dynamic_ports:
        return True
    own = sum(1 for p in res.ports if p in DYNAMIC_PORTS and p not in used)
    return free_dynamic(used) - own >= res.dynamic_ports


class PortsFree(Checker):
    name = "ports"
    resources_only = False  # reads what runs on the machine, not only free resources

    def applies(self, req: TaskRequest) -> bool:
        return req.resources.needs_ports

    def check(self, ctx: EvalContext) -> np.ndarray:
        wanted = set(ctx.req.resources.ports)
        used = ctx.view.ports
        req = ctx.req
        return np.fromiter((not (used[m] & wanted) and _dynamic_room(used[m], req) for m in ctx.idx),
                           dtype=bool, count=len(ctx))

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        wanted = sorted(ctx.req.resources.ports)
        used = ctx.view.ports
        dynamic = ctx.req.resources.dynamic_ports
        return Counter(
            next((f"port {p} in use" for p in wanted if p in used[m]), f"fewer than {dynamic} free dynamic ports")
            for m in ctx.idx[rejected]
        )
