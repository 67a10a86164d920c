"""Tasks with nowhere left to go: no machine of the cell it has not failed on could ever run it.

A task its agent gave up on is tried elsewhere (corral.master.failover), and
the scheduler keeps it off the machines it failed on. When no other machine
of the cell could ever hold it — too small even empty, the wrong GPU model,
a hard constraint it does not meet — waiting would be for ever: the task
fails, and its job with it, saying so
(``failed on m1; no machine it has not failed on can run it (m2: too little
memory, 16Gi asked, 8Gi there); last error: ...``). Machines that are down
still count (they may come back); the check is of a machine's capacity, not
of what is free on it now (that changes). Pure reads of the state.
"""

from __future__ import annotations

from typing import Any

from corral.model.resources import format_bytes
from corral.sched.request import TaskRequest


def why_not(machine: Any, request: TaskRequest) -> str | None:
    """Why ``machine`` (a MachineRecord) could never run ``request``, or None if it could (when empty)."""
    need, have = request.resources, machine.capacity
    if need.cpu > have.cpu:
        return f"too little cpu, {need.cpu}m asked, {have.cpu}m there"
    if need.memory > have.memory:
        return f"too little memory, {format_bytes(need.memory)} asked, {format_bytes(have.memory)} there"
    if need.disk > have.disk:
        return f"too little disk, {format_bytes(need.disk)} asked, {format_bytes(have.disk)} there"
    if need.gpu > have.gpu:
        return f"too few GPUs, {need.gpu} asked, {have.gpu} there"
    if need.gpu and need.gpu_models and machine.gpu_model not in need.gpu_models:
        return f"GPU model {machine.gpu_model or 'none'}, not {'|'.join(need.gpu_models)}"
    attributes = machine.machine().attributes
    for constraint in request.constraints:
        if not constraint.matches(attributes):
            return f"constraint {constraint} not met"
    return None


def nowhere_left(state: Any, request: TaskRequest, tried: list[str]) -> str | None:
    """None while some machine of the cell not in ``tried`` could run ``request``; else the reason,
    naming the others and why each cannot (at most 5)."""
    others = []
    for machine in state.machines.values():
        if machine.name in tried:
            continue
        why = why_not(machine, request)
        if why is None:
            return None  # usually the first machine looked at: a cell rarely has nowhere left
        others.append((machine.name, why))
    if not others:
        return "no machine it has not failed on can run it (the cell has no other machine)"
    shown = "; ".join(f"{name}: {why}" for name, why in others[:5]) + ("; ..." if len(others) > 5 else "")
    return f"no machine it has not failed on can run it ({shown})"
