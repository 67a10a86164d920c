"""Best fit, worst fit (E-PVM) and the stranding-aware hybrid, on cells where the formula decides."""

import numpy as np
import pytest

from corral.sched.cellview import CellView
from corral.sched.scorers import BestFit, StrandingHybrid, WorstFit
from corral.sched.testing import context, machine, occupy, request


def _scores(scorer, cell, running, req):
    view = CellView(cell)
    for n, (name, other) in enumerate(running):
        occupy(view, name, other, f"old/{n}")
    return scorer.score(context(view, req))


CELL = [machine("empty", cpu=8, memory_gib=32), machine("half", cpu=8, memory_gib=32)]
HALF_FULL = [("half", request(cpu=4, memory_gib=16))]

CASES = [
    ("best fit prefers the fuller machine", BestFit(), CELL, HALF_FULL, request(cpu=2, memory_gib=8), "half"),
    ("worst fit prefers the emptier machine", WorstFit(), CELL, HALF_FULL, request(cpu=2, memory_gib=8), "empty"),
    ("the hybrid packs when the fill is balanced", StrandingHybrid(), CELL, HALF_FULL, request(cpu=2, memory_gib=8), "half"),
    (
        "the hybrid avoids exhausting cpu while memory stays idle",
        StrandingHybrid(),
        [machine("cpu-heavy", cpu=8, memory_gib=32), machine("memory-heavy", cpu=8, memory_gib=32)],
        [("cpu-heavy", request(cpu=6, memory_gib=8)), ("memory-heavy", request(cpu=1, memory_gib=20))],
        request(cpu=2, memory_gib=2),
        "memory-heavy",
    ),
    (
        "best fit, blind to stranding, fills the cpu-heavy machine",
        BestFit(),
        [machine("cpu-heavy", cpu=8, memory_gib=32), machine("memory-heavy", cpu=8, memory_gib=32)],
        [("cpu-heavy", request(cpu=6, memory_gib=8)), ("memory-heavy", request(cpu=1, memory_gib=20))],
        request(cpu=2, memory_gib=2),
        "cpu-heavy",
    ),
]


@pytest.mark.parametrize("case, scorer, cell, running, req, winner", CASES, ids=[c[0] for c in CASES])
def test_the_formula_picks_the_expected_machine(case, scorer, cell, running, req, winner):
    scores = _scores(scorer, cell, running, req)
    assert [m.name for m in cell][int(np.argmax(scores))] == winner
    assert ((0 <= scores) & (scores <= 1)).all()


def test_best_fit_is_one_minus_the_mean_fraction_left():
    # After a 2-cpu/8-GiB task on an 8-cpu/32-GiB machine, 3/4 of each is left.
    scores = _scores(BestFit(), [machine("m", cpu=8, memory_gib=32)], [], request(cpu=2, memory_gib=8))
    assert scores[0] == pytest.approx(0.25)


def test_the_hybrid_halves_fullness_and_balance():
    # 6/8 cpu and 8/32 memory used after placement: left (0.25, 0.75); fullness 0.5, stranding 0.5.
    scores = _scores(StrandingHybrid(), [machine("m", cpu=8, memory_gib=32)], [], request(cpu=6, memory_gib=8))
    assert scores[0] == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)
