"""Sigma's placement "water levels": the names a job spec's ``placement`` (and a cell's policy) may take.

* ``stability-first``: spread — keep every machine at the lowest level it can be;
* ``utilisation-first`` (also spelled ``utilization-first``): pack — fill machines to the
  highest level and keep whole machines free for large work.

The scorers behind the names are in corral/sched/scorers/water_levels.py.
"""

from __future__ import annotations

STABILITY_FIRST = "stability-first"
UTILISATION_FIRST = "utilisation-first"
ALIASES = {"utilization-first": UTILISATION_FIRST}
PLACEMENTS = (STABILITY_FIRST, UTILISATION_FIRST)


def canonical_placement(name: str) -> str:
    """The placement's own name (``utilization-first`` -> ``utilisation-first``); ValueError naming the
    known ones for anything else."""
    name = ALIASES.get(name, name)
    if name not in PLACEMENTS:
        known = ", ".join((*PLACEMENTS, *ALIASES))
        raise ValueError(f"expected one of {known}, got {name!r}")
    return name
