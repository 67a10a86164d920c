"""The allocation curve's buckets and rounding, exactly as the artifact's scripts compute them."""

import pytest

from corral.sim.openb.curve import allocation_curve, arrive_ratio, bucket_mean

T = 100  # GPUs: 1 % of capacity = 1000 milli


@pytest.mark.parametrize("case, arrived, used, column, expected", [
    ("a bucket averages the allocation of every event whose arrival rounds to it",
     [49_600, 50_000, 50_400], [40_000, 41_000, 42_000], 50, 41.0),
    ("arrival ratios round half to even, so 50.5 % belongs to bucket 50",
     [50_500], [43_000], 50, 43.0),
    ("an empty bucket takes the events within one point around it",
     [49_000, 51_000], [40_000, 42_000], 50, 41.0),
    ("the bucket mean is rounded half to even by NumPy: 56.325 -> 56.32",
     [50_000] * 4, [56_320, 56_320, 56_330, 56_330], 50, 56.32),
])
def test_allocation_curve_cells(case, arrived, used, column, expected):
    assert allocation_curve(arrived, used, T, [column])[column] == expected


def test_a_bucket_with_no_events_nearby_has_no_value():
    assert allocation_curve([10_000], [10_000], T, [50]) == {50: None}


def test_arrive_ratio_uses_python_rounding_of_the_percentage():
    assert arrive_ratio([1_500, 2_500, 2_600], T).tolist() == [2.0, 2.0, 3.0]


def test_fragmentation_ratio_buckets_are_not_rounded():
    assert bucket_mean([90_000, 90_100, 90_200], [50.01, 50.02, 50.04], T, 90) == pytest.approx(50.023333333)
