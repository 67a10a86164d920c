"""The reservation estimator (Borg §5.5): from the limit towards the usage peak plus a margin."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.master.reservations import ReservationPolicy, Reservations

LIMIT = np.array([1000, 4000])


def _est(**policy):
    r = Reservations(ReservationPolicy(**policy))
    r.start("t", LIMIT, 0.0)
    return r


def test_a_task_starts_at_its_limit_and_stays_there_until_usage_is_known():
    r = _est()
    assert list(r.of("t")) == [1000, 4000]
    r.advance(10_000.0)
    assert list(r.of("t")) == [1000, 4000] and r.peak("t") is None


@pytest.mark.parametrize("at, expected", [
    # usage 100 cpu, 1000 memory from t=0: the target is 110 and 1100; decay 300 s, linear.
    (0.0, [1000, 4000]),
    (150.0, [555, 2550]),  # halfway: 1000 - 890/2, 4000 - 2900/2
    (300.0, [110, 1100]),
    (900.0, [110, 1100]),  # never below the peak plus the margin
], ids=["at the start", "halfway through the decay", "when the decay ends", "long after"])
def test_the_reservation_decays_linearly_to_the_peak_plus_the_margin(at, expected):
    r = _est()
    t = 0.0
    while t <= at:
        r.observe("t", np.array([100, 1000]), t)
        t += 1.0
    assert list(r.of("t")) == expected


def test_it_rises_at_once_when_usage_rises():
    r = _est()
    for t in range(0, 301):
        r.observe("t", np.array([100, 1000]), float(t))
    assert list(r.observe("t", np.array([500, 1000]), 301.0)) == [550, 1100]


def test_an_old_peak_leaves_the_window_and_the_reservation_decays_again():
    r = _est(peak_window_s=60.0)
    r.observe("t", np.array([800, 1000]), 0.0)  # a spike
    for t in range(1, 400):
        r.observe("t", np.array([100, 1000]), float(t))
    assert list(r.of("t")) == [110, 1100]


def test_it_never_reserves_more_than_the_limit():
    r = _est()
    assert list(r.observe("t", np.array([5000, 9000]), 1.0)) == [1000, 4000]


def test_a_stopped_task_is_forgotten_and_a_restart_starts_at_the_limit_again():
    r = _est()
    for t in range(0, 400):
        r.observe("t", np.array([100, 1000]), float(t))
    r.stop("t")
    assert "t" not in r and len(r) == 0
    assert list(r.start("t", LIMIT, 500.0)) == [1000, 4000]


@pytest.mark.parametrize("field, value", [("margin", -0.1), ("decay_s", 0), ("peak_window_s", -5), ("decay_s", True)])
def test_a_bad_policy_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ReservationPolicy(**{field: value})


samples_st = st.lists(st.tuples(st.floats(0.1, 120.0), st.integers(0, 1500), st.integers(0, 5000)),
                      min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(samples_st)
def test_the_reservation_stays_between_the_recent_peak_plus_margin_and_the_limit(samples):
    policy = ReservationPolicy(margin=0.1, decay_s=300.0, peak_window_s=300.0)
    r = Reservations(policy)
    r.start("t", LIMIT, 0.0)
    t = 0.0
    seen = []
    for gap, cpu, memory in samples:
        t += gap
        seen.append((t, np.array([cpu, memory])))
        got = r.observe("t", seen[-1][1], t)
        recent = np.max([u for at, u in seen if at > t - policy.peak_window_s], axis=0)
        floor = np.minimum(LIMIT, np.ceil(np.round(recent * 1.1, 6)))
        assert (got <= LIMIT).all() and (got >= floor).all(), (got, floor)
