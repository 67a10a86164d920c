"""The agent's full-state report (``GET /v1/state``): every task it knows, and the machine's usage.

This is always the whole state; ``changes.delta_of`` cuts it to what changed since an
earlier answer when the master asks for that (``?since=S&incarnation=I``), and only
when the answer can be exact.
"""

from __future__ import annotations

from typing import Any

from corral.agent.eviction import MemoryReading


def full_state(
    machine: str,
    isolation: str,
    incarnation: int,
    capacity: dict[str, int],
    tasks: list[dict[str, Any]],
    reading: MemoryReading | None,
    pressure_threshold: float,
) -> dict[str, Any]:
    """``{"machine", "isolation", "incarnation", "capacity", "tasks": [TaskStatus...], "usage": {...}}``.

    ``usage.cpu_milli`` / ``usage.memory_bytes`` sum the tasks; the
    ``machine_*`` entries are the whole host's memory as last read by the
    pressure check.
    """
    usage: dict[str, Any] = {
        "cpu_milli": sum(t["usage"]["cpu_milli"] for t in tasks),
        "memory_bytes": sum(t["usage"]["memory_bytes"] for t in tasks),
        "memory_pressure_threshold": pressure_threshold,
    }
    if reading is not None:
        usage["machine_memory_total_bytes"] = reading.total_bytes
        usage["machine_memory_available_bytes"] = reading.available_bytes
        usage["machine_memory_used_fraction"] = round(reading.used_fraction, 4)
    return {
        "machine": machine,
        "isolation": isolation,
        "incarnation": incarnation,
        "capacity": dict(capacity),
        "tasks": tasks,
        "usage": usage,
    }
