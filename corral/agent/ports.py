"""The agent's side of host ports: a task's ports are its own while it is live on this machine.

The master never gives two tasks one port of a machine; this is the agent's
own check of that (a late launch from a deposed master, a stale plan): a
launch that asks for a port another live task holds is refused.
"""

from __future__ import annotations

from typing import Iterable

from corral.agent.launch import TaskLaunch


def port_clashes(launch: TaskLaunch, live: Iterable) -> list[str]:
    """``"port P is held by task T"`` for each port of ``launch`` another live task holds."""
    wanted = set(launch.ports)
    out = []
    for rec in live:
        if rec.launch.task_id == launch.task_id:
            continue  # its own earlier generation: replaced, not shared
        for port in sorted(wanted.intersection(rec.launch.ports)):
            out.append(f"port {port} is held by task {rec.launch.task_id}")
    return out
