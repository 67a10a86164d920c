"""Workload tuning: shuffled originals first, then copies drawn with replacement until 130 %."""

import pytest

from corral.model.resources import Resources
from corral.sched.request import TaskRequest
from corral.sim.openb.loader import OpenbPod
from corral.sim.openb.tuning import tune_workload


def pod(name, num_gpu, milli, cpu=1000):
    req = TaskRequest(Resources(cpu=cpu, gpu=num_gpu, gpu_milli=milli or 1000), priority=0)
    return OpenbPod(name, cpu, 1, num_gpu, milli if num_gpu else 0, (), req)


PODS = [pod("a", 1, 500), pod("b", 2, 1000), pod("c", 0, 0), pod("d", 1, 1000)]  # 3500 milli in all


@pytest.mark.parametrize("case, capacity, check", [
    ("tuning up keeps every original pod first and appends tuned copies",
     10_000, lambda out: sorted(p.name for p in out[:4]) == ["a", "b", "c", "d"]
     and all("-tuned-" in p.name for p in out[4:])),
    ("tuning up stops below 130 % of capacity, within one pod's share",
     10_000, lambda out: 13_000 - 2000 < sum(p.gpu_demand for p in out) <= 13_000 + 1000),
    ("tuning down removes pods until the demand is at most 130 %",
     2_000, lambda out: sum(p.gpu_demand for p in out) <= 2_600 and len(out) < 4),
])
def test_tuning(case, capacity, check):
    assert check(tune_workload(PODS, capacity, seed=42))


def test_the_same_seed_gives_the_same_workload_and_another_seed_another():
    names = lambda seed: [p.name for p in tune_workload(PODS * 10, 50_000, seed)]
    assert names(42) == names(42)
    assert names(42) != names(43)


def test_the_stop_rule_compares_the_per_gpu_share_not_the_pods_total():
    # capacity 3000 -> target 3900; one pod of 2 x 1000 (2000). A copy is accepted because
    # 2000 + 1000 (its per-GPU share) <= 3900, although the total becomes 4000 > 3900.
    out = tune_workload([pod("x", 2, 1000)], 3000, seed=1)
    assert [p.name for p in out] == ["x", "x-tuned-0"]
    assert sum(p.gpu_demand for p in out) == 4000
