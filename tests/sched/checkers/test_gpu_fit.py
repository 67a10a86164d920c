import pytest

from corral.sched.cellview import CellView
from corral.sched.checkers import GpuFit, GpuModel
from corral.sched.testing import context, machine, occupy, request

CELL = [machine("v100", gpus=2, gpu_model="V100"), machine("a100", gpus=4, gpu_model="A100"), machine("cpu")]
HALF = request(gpu=1, gpu_milli=500)

CASES = [
    ("a whole GPU fits on every machine that has an idle GPU", request(gpu=1), [], [True, True, False]),
    ("four whole GPUs fit only on the four-GPU machine", request(gpu=4), [], [False, True, False]),
    ("a model constraint keeps the task to machines of that model", request(gpu=1, gpu_models=("A100",)), [], [False, True, False]),
    ("either of two models will do", request(gpu=1, gpu_models=("A100", "V100")), [], [True, True, False]),
    ("a share fits next to another share on the same GPU", HALF, [("v100", HALF, (0,)), ("v100", request(gpu=1), (1,))], [True, True, False]),
    ("a whole GPU does not fit where every GPU is partly shared", request(gpu=1), [("v100", HALF, (0,)), ("v100", HALF, (1,))], [False, True, False]),
    ("a 700m share needs one GPU with 700m idle, not 700m in total", request(gpu=1, gpu_milli=700),
     [("v100", HALF, (0,)), ("v100", HALF, (1,))], [False, True, False]),
]


@pytest.mark.parametrize("case, req, running, expected", CASES, ids=[c[0] for c in CASES])
def test_gpu_fit(case, req, running, expected):
    view = CellView(CELL)
    for n, (name, other, gpus) in enumerate(running):
        occupy(view, name, other, f"old/{n}", gpus=gpus)
    ctx = context(view, req)
    assert (GpuModel().check(ctx) & GpuFit().check(ctx)).tolist() == expected


def test_gpu_reasons_name_the_missing_gpu_the_model_and_the_share():
    view = CellView(CELL)
    req = request(gpu=2, gpu_models=("V100",))
    occupy(view, "v100", request(gpu=1), "old/0", gpus=(0,))
    ctx = context(view, req)
    wrong = ~GpuModel().check(ctx)
    assert GpuModel().reasons(ctx, wrong) == {"no GPU": 1, "GPU model not V100": 1}
    short = ~wrong & ~GpuFit().check(ctx)
    assert GpuFit().reasons(ctx, short) == {"fewer than 2 GPUs with 1000m idle": 1}
    assert GpuFit.exhausts and not GpuModel.exhausts


def test_cpu_only_tasks_are_not_checked_for_gpus():
    assert not GpuFit().applies(request()) and not GpuModel().applies(request())
