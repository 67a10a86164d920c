"""The FGD paper's best-fit formula (cpu and total GPU left, half each), by hand."""

import pytest

from corral.sched.cellview import CellView
from corral.sched.scorers.fgd_bestfit import FgdBestFit
from corral.sched.testing import context, machine, occupy, request


@pytest.mark.parametrize("case, req, expected", [
    ("the machine left with less cpu and GPU scores higher", request(cpu=8, gpu=1), [34, 84]),
    ("a CPU-only task still counts the idle GPUs of the machine", request(cpu=8), [28, 78]),
])
def test_fgd_bestfit_scores_int_of_one_minus_half_cpu_left_plus_half_gpu_left(case, req, expected):
    # a: s = 56000/128000*0.5 + 7000/8000*0.5 = 0.65625 -> 34; b: 24000/128000*0.5 + 1000/8000*0.5 -> 84
    view = CellView([machine("a", cpu=64, gpus=8), machine("b", cpu=32, gpus=2)])
    assert list(FgdBestFit().raw(context(view, req))) == expected


def test_fgd_bestfit_sees_gpu_shares_already_used():
    view = CellView([machine("a", cpu=64, gpus=8), machine("b", cpu=64, gpus=8)])
    occupy(view, "b", request(cpu=0, gpu=1, gpu_milli=500), "t0", gpus=(0,))
    raw = FgdBestFit().raw(context(view, request(cpu=8, gpu=1, gpu_milli=500)))
    assert raw[1] > raw[0]
