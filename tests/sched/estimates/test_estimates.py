"""The pure estimators: hand-computed runtimes, start-up costs, failure probabilities, wait-time
matrices and completion times, and the quantile sketch against exact quantiles (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from corral.sched.estimates import (CompletionModel, FailureEstimator, MachineLoad, Occupant, QuantileSketch,
                                    RuntimeEstimator, StartupEstimator, TaskQuery, WaitTimeMatrix, exact_quantile,
                                    wait_until_fits)

GIB = 2**30


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=1e6, allow_nan=False), min_size=1, max_size=400),
       st.floats(min_value=0.0, max_value=1.0))
def test_sketch_quantiles_are_within_alpha_of_the_exact_ones(values, q):
    sketch = QuantileSketch(alpha=0.01)
    for v in values:
        sketch.add(v)
    exact = exact_quantile(values, q)
    assert abs(sketch.quantile(q) - exact) <= 0.01 * exact * (1 + 1e-9)


def test_the_prior_is_used_until_enough_tasks_finished():
    est = RuntimeEstimator(min_samples=3)
    est.job_submitted("sort.alice", expected_runtime=100.0)
    est.observe("sort.alice", "c", 10.0)
    est.observe("sort.alice", "c", 20.0)
    assert (est.estimate("sort.alice", "c").mean_s, est.estimate("sort.alice", "c").source) == (100.0, "spec")
    est.observe("sort.alice", "c", 30.0)  # the third: (10 + 20 + 30) / 3 = 20
    assert (est.estimate("sort.alice", "c").mean_s, est.estimate("sort.alice", "c").source) == (20.0, "tasks")
    # Submitted again without expected_runtime: the earlier job's 20 s is the prior (history).
    est.job_submitted("sort.alice", expected_runtime=None)
    assert (est.estimate("sort.alice").mean_s, est.estimate("sort.alice").source) == (20.0, "history")


def test_startup_first_and_warm_and_failure_probability():
    s = StartupEstimator()
    s.observe("m1", ("a",), 10.0)  # first start of a on m1
    s.observe("m1", ("a",), 2.0)  # warm
    s.observe("m1", ("b",), 14.0)  # first of b: first mean (10 + 14) / 2 = 12
    assert (s.estimate("m1", "a"), s.estimate("m1", "c"), s.estimate("m2", "a")) == (2.0, 12.0, 12.0)
    f = FailureEstimator(prior_p=0.02, prior_weight=2.0)
    assert f.probability("j") == pytest.approx(0.02)
    for failed in (True, False, False, False):
        f.observe("j", failed)
    assert f.probability("j") == pytest.approx((1 + 0.04) / 6)  # (failures + w·p0) / (attempts + w)


def test_wait_matrix_by_hand():
    # 8 cores, 16 GiB; running: 4 cores/8 GiB leaving in 30 s, 2 cores/4 GiB leaving in 10 s; free 2 cores/4 GiB.
    load = MachineLoad(8000, 16 * GIB, 2000, 4 * GIB,
                       running=(Occupant(4000, 8 * GIB, 30.0), Occupant(2000, 4 * GIB, 10.0)))
    assert wait_until_fits(load, 2000, 4 * GIB) == 0.0  # fits now
    assert wait_until_fits(load, 4000, 8 * GIB) == 10.0  # after the 10 s one: 4 cores, 8 GiB free
    assert wait_until_fits(load, 8000, 16 * GIB) == 30.0
    assert wait_until_fits(load, 9000, GIB) == math.inf
    # Queued 4 cores/8 GiB for 50 s starts at 10 (free 4/8 then), leaving 0/0 free until 30 (4/8 back):
    queued = MachineLoad(load.capacity_cpu_milli, load.capacity_memory, 2000, 4 * GIB, load.running,
                         queued=(Occupant(4000, 8 * GIB, 50.0),))
    assert wait_until_fits(queued, 2000, 4 * GIB) == 30.0
    assert wait_until_fits(queued, 8000, 16 * GIB) == 60.0  # the queued one leaves at 10 + 50
    matrix = WaitTimeMatrix({"m1": load})
    assert matrix.expected_wait_s("m1", 1.5, 3 * GIB) == 0.0  # bucket 2 cores × 4 GiB: 2/4 free now
    # 3 cores × 5 GiB is in the bucket 4 cores × 16 GiB: 16 GiB needs the whole machine, free at 30 s.
    assert matrix.expected_wait_s("m1", 3.0, 5 * GIB) == 30.0
    assert matrix.expected_wait_s("m1", 17.0, GIB) == math.inf  # beyond the last bucket: exact, too big


def test_completion_time_inflated_by_failure_probability():
    runtimes, startups, failures = RuntimeEstimator(min_samples=1), StartupEstimator(), FailureEstimator(0.0, 1.0)
    runtimes.observe("j", None, 90.0)
    startups.observe("m1", ("j",), 10.0)
    failures.observe("j", True)  # p = (1 + 0) / (1 + 1) = 0.5
    matrix = WaitTimeMatrix({"m1": MachineLoad(8000, 16 * GIB, 8000, 16 * GIB)})
    model = CompletionModel(runtimes, startups, failures, matrix)
    # wait 0 + (warm start-up 10 + runtime 90) / (1 - 0.5) = 200
    assert model.estimated_completion_s(TaskQuery("j", None, 1.0, GIB), "m1") == pytest.approx(200.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e6, allow_nan=False), min_size=0, max_size=200))
def test_a_sketch_and_a_mean_written_to_json_and_read_back_answer_the_same(values):
    import json

    from corral.sched.estimates.sketch import RunningMean

    sketch, mean = QuantileSketch(alpha=0.01), RunningMean()
    for v in values:
        sketch.add(v)
        mean.add(v)
    back = QuantileSketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    again = RunningMean.from_list(json.loads(json.dumps(mean.to_list())))
    for q in (0.0, 0.5, 0.9, 1.0):
        a, b = sketch.quantile(q), back.quantile(q)
        assert (math.isnan(a) and math.isnan(b)) or a == b
    assert (again.n, again.mean, again.variance) == (mean.n, mean.mean, mean.variance)


def test_startup_and_runtime_estimators_round_trip_with_their_keys_encoded_by_the_caller():
    import json

    s = StartupEstimator()
    s.observe("m1", (("command", "sleep"), "b"), 4.0)
    s.observe("m1", (("command", "sleep"), "c"), 1.0)
    s.observe("m2", ("d",), 2.0)
    back = StartupEstimator.from_dict(json.loads(json.dumps(s.to_dict(lambda k: list(k) if isinstance(k, tuple) else k))),
                                      lambda k: tuple(k) if isinstance(k, list) else k)
    for m in ("m1", "m2", "m3"):
        assert (back.first_s(m), back.warm_s(m)) == (s.first_s(m), s.warm_s(m))
    assert back.is_warm("m1", ("command", "sleep")) and back.is_warm("m1", "c") and not back.is_warm("m2", "b")
    r = RuntimeEstimator(min_samples=2)
    r.job_submitted("b", 30.0)
    for seconds in (10.0, 20.0):
        r.observe("b", "cls-1", seconds)
    rb = RuntimeEstimator.from_dict(json.loads(json.dumps(r.to_dict(str))), str)
    assert rb.estimate("b", "cls-1") == r.estimate("b", "cls-1") and rb.prior("b") == r.prior("b")
    f = FailureEstimator()
    f.observe("b", True)
    assert FailureEstimator.from_dict(json.loads(json.dumps(f.to_dict()))).probability("b") == f.probability("b")
