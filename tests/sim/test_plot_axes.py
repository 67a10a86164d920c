"""Plots scale their value axis to the data: the openb replay's allocations of 0-1 % are drawn on an
axis that ends near 1 %, not on a fixed 0-100 % one where every line lies on the x axis."""

from __future__ import annotations

import pytest

from corral.sim.metrics import SAMPLE_COLUMNS
from corral.sim.plotting import axis_top
from corral.sim.report import plot_utilization

CASES = [
    ("allocations under 1 % end the axis at 1 %", 0.8, 1.0),
    ("a peak of 42 % ends it at 50 %", 42.0, 50.0),
    ("a full cell ends it at 200 (the caller caps percent axes at 105)", 100.0, 200.0),
    ("a tiny peak gets a tiny axis", 0.003, 0.005),
    ("nothing drawn: a unit axis", 0.0, 1.0),
]


@pytest.mark.parametrize("what,peak,top", CASES, ids=[c[0] for c in CASES])
def test_the_axis_top_is_the_next_round_step_above_the_peak(what, peak, top):
    assert axis_top(peak) == pytest.approx(top)
    assert axis_top(peak) >= peak


def _samples(alloc: float) -> list[tuple[float, ...]]:
    rows = []
    for i in range(10):
        row = [0.0] * len(SAMPLE_COLUMNS)
        row[SAMPLE_COLUMNS.index("t")] = 60.0 * i
        row[SAMPLE_COLUMNS.index("alloc_gpu")] = alloc * i / 9
        rows.append(tuple(row))
    return rows


def test_the_replay_plot_of_a_nearly_empty_cell_is_drawn_on_an_axis_of_its_own_size(tmp_path):
    low, high = plot_utilization(_samples(0.008), tmp_path / "u.png", {"trace": "openb", "policy": "fgd"})
    assert (low, high) == (0.0, 1.0) and (tmp_path / "u.png").stat().st_size > 0
    _, full = plot_utilization(_samples(0.9), tmp_path / "v.png", {"trace": "openb", "policy": "fgd"})
    assert full == 100.0
