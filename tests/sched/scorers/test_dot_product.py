"""The FGD paper's dot-product score, checked against hand-computed values."""

import pytest

from corral.sched.scorers.dot_product import DotProduct
from corral.sched.testing import context, machine, request
from corral.sched.cellview import CellView


def cell():
    # a: 64 cores, 8 idle GPUs; b: 32 cores, 2 idle GPUs
    return CellView([machine("a", cpu=64, gpus=8, gpu_model="G2"), machine("b", cpu=32, gpus=2, gpu_model="T4")])


@pytest.mark.parametrize("case, req, expected", [
    ("a whole-GPU task scores int(100(1 - d/2)) with d = cpu and GPU alignment",
     request(cpu=8, gpu=1), [92, 97]),  # a: d=0.5*0.0625+1*0.125; b: d=0.25*0.0625+0.25*0.125
    ("a CPU-only task aligns on cpu alone", request(cpu=8), [98, 99]),
    ("a shared-GPU task counts only its share of one GPU", request(cpu=8, gpu=1, gpu_milli=400), [95, 98]),
])
def test_dot_product_prefers_the_machine_whose_free_resources_align_least(case, req, expected):
    assert list(DotProduct().raw(context(cell(), req))) == expected


def test_a_machine_without_the_cpu_scores_zero():
    view = cell()
    ctx = context(view, request(cpu=40, gpu=1))
    assert DotProduct().raw(ctx)[1] == 0
