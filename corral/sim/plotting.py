"""Plots are optional: matplotlib comes with the ``corral[sim]`` extra (an agent's install does not
pull it in). Without it the simulator writes its JSON and CSV files and says how to get the PNGs."""

from __future__ import annotations

import importlib.util
import math

MISSING = "PNG plots need matplotlib: pip install 'corral[sim]'"


def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def axis_top(peak: float, floor: float = 1e-9) -> float:
    """The top of a value axis that starts at 0 and shows ``peak`` (the largest value drawn) with
    some room: the next step of 1, 2 or 5 times a power of ten above 1.1 x ``peak``. An axis of
    allocations of 0-1 % ends near 1 %, not at 100 %, so the lines do not lie on the x axis."""
    if not math.isfinite(peak) or peak <= floor:
        return 1.0
    target = peak * 1.1
    power = 10.0 ** math.floor(math.log10(target))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= target * (1 - 1e-12):
            return step * power
    return 10.0 * power
