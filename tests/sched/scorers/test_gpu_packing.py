"""The FGD paper's GPU-packing score: partly used GPUs first, then partly used machines, idle ones last."""

import pytest

from corral.sched.cellview import CellView
from corral.sched.scorers.gpu_packing import GpuPacking
from corral.sched.testing import context, machine, occupy, request


def cell():
    view = CellView([machine("idle8", cpu=96, gpus=8), machine("idle2", cpu=64, gpus=2), machine("half", cpu=96, gpus=8)])
    occupy(view, "half", request(cpu=1, gpu=1, gpu_milli=500), "t0", gpus=(0,))
    return view


@pytest.mark.parametrize("case, req, expected", [
    ("a shared task scores 100 - r//10 on a partly used GPU and max(33-idle, idle) on idle machines",
     request(cpu=1, gpu=1, gpu_milli=300), [25, 31, 95]),
    ("a whole-GPU task on a partly used machine scores max(50 - GPUs opened, 33)",
     request(cpu=1, gpu=1), [25, 31, 49]),
    ("a four-GPU task opens four idle GPUs", request(cpu=1, gpu=4), [25, 31, 46]),
    ("a CPU-only task scores zero everywhere", request(cpu=1), [0, 0, 0]),
])
def test_gpu_packing_scores(case, req, expected):
    assert list(GpuPacking().raw(context(cell(), req))) == expected
