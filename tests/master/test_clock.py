"""The one manual clock that tests and the simulator share."""

from __future__ import annotations

import pytest

from corral.master.clock import ManualClock, WallClock


@pytest.mark.parametrize("case, moves, want", [
    ("a new clock reads its start", [], 1000.0),
    ("advance moves forward by that many seconds", [("advance", 5.0), ("advance", 0.5)], 1005.5),
    ("advance by zero leaves the time as it was", [("advance", 0.0)], 1000.0),
    ("advance_to moves to that time", [("advance_to", 1200.0)], 1200.0),
    ("advance_to now is allowed", [("advance_to", 1000.0)], 1000.0),
])
def test_a_manual_clock_moves_only_forward_when_told(case, moves, want):
    clock = ManualClock(1000.0)
    for method, arg in moves:
        getattr(clock, method)(arg)
    assert clock.now() == want == clock.t


@pytest.mark.parametrize("case, method, arg", [
    ("advancing by a negative time is refused", "advance", -1.0),
    ("moving to a time before now is refused", "advance_to", 999.0),
])
def test_a_manual_clock_never_goes_back(case, method, arg):
    clock = ManualClock(1000.0)
    with pytest.raises(ValueError, match="cannot go back"):
        getattr(clock, method)(arg)
    assert clock.now() == 1000.0


def test_the_wall_clock_reads_seconds_since_the_epoch():
    assert WallClock().now() > 1.6e9
