"""Named ports: ``ports: {http: 0, admin: 8081}`` in a job spec.

A named port is either fixed (a number) or dynamic (``0``: any free port,
picked by the scheduler on the machine it places the task on). A plain list
``ports: [8080]`` is fixed ports without names. The scheduler sees the fixed
ports and a count of dynamic ones (:class:`~corral.model.resources.Resources`);
once a task is placed, :func:`named` pairs each name with its port, which the
agent passes to the task as ``PORT_<NAME>`` and the name service answers in
SRV records.
"""

from __future__ import annotations

import re
from typing import Mapping

PORT_NAME = re.compile(r"[a-z][a-z0-9]{0,14}")  # an SRV service label: _http._tcp.<name>
PORT_NAME_RULE = "a lower-case letter then up to 14 lower-case letters or digits"
DYNAMIC_PORTS = range(31000, 32768)  # where "any free port" is picked from (Borg-like high range)


def check_named(ports: Mapping[str, int]) -> dict[str, int]:
    """Names valid, numbers 0 (dynamic) or 1..65535, fixed numbers distinct; raises ValueError."""
    fixed = [p for p in ports.values() if p]
    for name, port in ports.items():
        if not PORT_NAME.fullmatch(name):
            raise ValueError(f"expected a port name of {PORT_NAME_RULE}, got {name!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"expected port {name} to be 0 (any free) or in 1..65535, got {port}")
    if len(set(fixed)) != len(fixed):
        raise ValueError("expected distinct fixed ports")
    return dict(ports)


def named(ports: Mapping[str, int], dynamic: tuple[int, ...]) -> dict[str, int]:
    """Each name with its port: fixed ones as given, dynamic ones (0) in order from ``dynamic``."""
    picked = iter(dynamic)
    return {name: (port or next(picked)) for name, port in ports.items()}


def env_name(name: str) -> str:
    """``http`` -> ``PORT_HTTP``."""
    return f"PORT_{name.upper()}"


def pick_free(used: set[int], wanted_fixed: tuple[int, ...], count: int) -> tuple[int, ...] | None:
    """The lowest ``count`` ports of :data:`DYNAMIC_PORTS` free on a machine (not in ``used``,
    not one of the task's own fixed ports), or None if there are not that many."""
    if count <= 0:
        return ()
    taken = used.union(wanted_fixed)
    out = []
    for port in DYNAMIC_PORTS:
        if port not in taken:
            out.append(port)
            if len(out) == count:
                return tuple(out)
    return None


def free_dynamic(used: set[int]) -> int:
    """How many ports of :data:`DYNAMIC_PORTS` are free given ``used``."""
    lo, hi = DYNAMIC_PORTS.start, DYNAMIC_PORTS.stop
    return len(DYNAMIC_PORTS) - sum(1 for p in used if lo <= p < hi)
