"""The FGD paper's GPU-clustering score: tasks of one GPU shape together."""

import pytest

from corral.sched.cellview import CellView
from corral.sched.scorers.gpu_clustering import GpuClustering, gpu_tag
from corral.sched.testing import context, machine, occupy, request

SHARE = request(cpu=1, gpu=1, gpu_milli=500)
WHOLE = request(cpu=1, gpu=1)


def cell():
    view = CellView([machine("shares", cpu=96, gpus=8), machine("empty", cpu=64, gpus=2), machine("mixed", cpu=96, gpus=8)])
    occupy(view, "shares", SHARE, "t0", gpus=(0,))  # 7500 idle: base 25*500//8000 = 1
    occupy(view, "mixed", SHARE, "t1", gpus=(0,))
    occupy(view, "mixed", WHOLE, "t2", gpus=(1,))  # 6500 idle: base 25*1500//8000 = 4
    return view


@pytest.mark.parametrize("case, req, expected", [
    ("a shared task scores +75 where only shared tasks run, +25 on an empty machine, +50 among mixed",
     SHARE, [76, 18 + 25, 54]),
    ("a whole-GPU task gets no bonus where only shared tasks run", WHOLE, [1, 43, 54]),
    ("a two-GPU task matches no tag", request(cpu=1, gpu=2), [1, 43, 4]),
    ("a CPU-only task scores zero", request(cpu=1), [0, 0, 0]),
])
def test_gpu_clustering_scores(case, req, expected):
    assert list(GpuClustering().raw(context(cell(), req))) == expected


@pytest.mark.parametrize("case, req, tag", [
    ("one GPU share is a shared task", SHARE, "share-gpu"),
    ("whole GPUs are tagged by their count", request(gpu=4), "4-gpu"),
    ("a CPU-only task has no tag", request(), None),
])
def test_gpu_tags(case, req, tag):
    assert gpu_tag(req) == tag


def test_tags_are_recomputed_once_the_machine_changes():
    view = cell()
    scorer = GpuClustering()
    assert scorer.raw(context(view, WHOLE))[0] == 1
    occupy(view, "shares", WHOLE, "t3", gpus=(1,))
    assert scorer.raw(context(view, WHOLE))[0] == 25 * 1500 // 8000 + 50
