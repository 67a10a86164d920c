"""Opportunistic tasks on the agent (Apollo): the first to go and the last to get CPU, until upgraded.

The master runs a job's tasks beyond its user's quota as *opportunistic*
(corral/master/opportunistic.py) and says so in their launch (``"opportunistic":
true``; absent: false). Their priority stays the job's, so the agent cannot tell
them from the job's regular tasks by it; the flag decides instead:

* memory pressure: an opportunistic task is evicted before any regular task,
  whatever the priorities (corral/agent/eviction.py, ``Candidate.opportunistic``);
* CPU: it gets the lowest CPU weight there is (cgroup v2 ``cpu.weight`` 1, v1
  ``cpu.shares`` 2), so under contention every regular task runs first and it
  lives on idle cycles (its CFS cap stays its own cpu limit);
* upgrade: when its user's quota frees, the master sends the same launch again,
  the same generation, with the flag cleared. The agent takes that as an upgrade
  in place (:func:`is_upgrade`): no restart, the task keeps its process, and its
  sandbox gets the weight of a regular task (``Relimit``). Any other difference
  in a launch of the same generation is still ignored (a generation is immutable).

The supervisor asks :func:`is_upgrade` (pure); the runner writes the weight
(:func:`write_weight`: the weight alone, so a CFS cap that reclaimed room or
colocation put on the task stays).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from corral.agent import cgroups

# The lowest weights the kernel takes: an opportunistic task yields the CPU to everything else.
CPU_WEIGHT, CPU_SHARES = 1, 2


def is_upgrade(old: Any, new: Any) -> bool:
    """Is ``new`` (a TaskLaunch of ``old``'s generation) ``old`` with only its opportunistic flag changed?"""
    return (old.generation == new.generation and old.opportunistic != new.opportunistic
            and old.model_copy(update={"opportunistic": new.opportunistic}) == new)


def limits(base: Any, opportunistic: bool) -> Any:
    """A task's Limits (corral.agent.isolation) with the lowest CPU weight when it is opportunistic."""
    return replace(base, cpu_weight=CPU_WEIGHT, cpu_shares=CPU_SHARES) if opportunistic else base


def write_weight(isolation: Any, box: Any, limits: Any) -> bool:
    """Write ``limits``' CPU weight into the live sandbox ``box`` (False: its isolation has none: rlimit)."""
    if "unified" in box.dirs:
        cgroups.write(box.dirs["unified"] / "cpu.weight", limits.cpu_weight)
    elif box.dirs.get("cpu") is not None:
        cgroups.write(box.dirs["cpu"] / "cpu.shares", limits.cpu_shares)
    else:
        return False
    box.limits = replace(box.limits, cpu_weight=limits.cpu_weight, cpu_shares=limits.cpu_shares)
    return True
