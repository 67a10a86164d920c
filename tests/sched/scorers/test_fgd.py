"""FGD: the fragmentation measure, the score and the GPU it picks, on cells small enough to do by hand."""

import numpy as np
import pytest

from corral.sched.cellview import CellView
from corral.sched.scorers.fgd import (
    FGDScore, TypicalPods, access_table, fgd_select_gpus, node_frag, share_frag_after, take_gpus,
)
from corral.sched.testing import context, machine, occupy, request


def typical(*pods, p=None):
    """TypicalPods from (cpu milli, gpu milli, gpus, models) tuples, equally popular unless p is given."""
    p = np.full(len(pods), 1 / len(pods)) if p is None else np.asarray(p, dtype=float)
    return TypicalPods(np.array([t[0] for t in pods]), np.array([t[1] for t in pods]), np.array([t[2] for t in pods]),
                       tuple(t[3] if len(t) > 3 else () for t in pods), p)


@pytest.mark.parametrize("case, cpu_left, idle, pods, expected", [
    ("a GPU too small for the typical share is fragment, the rest is not",
     [5000], [[1000, 300]], [(1000, 500, 1)], 300),
    ("every idle GPU counts for a typical CPU-only task", [5000], [[1000, 300]], [(1000, 0, 0)], 1300),
    ("with too little cpu for the typical task all idle GPU is fragment", [500], [[1000, 300]], [(1000, 500, 1)], 1300),
    ("a typical two-GPU task needs two GPUs with its share idle", [5000], [[1000, 600]], [(1000, 1000, 2)], 1600),
    ("popularity weights the typical tasks", [5000], [[1000, 300]],
     [(1000, 500, 1), (1000, 1000, 1), (1000, 0, 0)], (300 + 300 + 1300) / 3),
])
def test_node_fragmentation_by_hand(case, cpu_left, idle, pods, expected):
    t = typical(*pods)
    got = node_frag(np.array(cpu_left), np.array(idle), np.ones((1, len(t)), dtype=bool), t)
    assert got[0] == pytest.approx(expected)


def test_a_typical_task_pinned_to_another_gpu_model_sees_only_fragment():
    view = CellView([machine("t4", cpu=8, gpus=1, gpu_model="T4"), machine("v100", cpu=8, gpus=1, gpu_model="V100")])
    t = typical((1000, 500, 1, ("V100",)))
    access = access_table(view, t)
    assert access.tolist() == [[False], [True]]
    assert node_frag(np.array([8000, 8000]), view.gpu_idle, access, t).tolist() == [1000, 0]


def test_fgd_prefers_the_machine_whose_fragmentation_grows_least():
    # typical: a 500-milli share. a: an idle GPU, stays usable after a 400 share (score 50);
    # b: 600 idle, drops to 200 < 500, fragment grows by 200: int(sigmoid(-0.2)*100) = 45.
    view = CellView([machine("a", cpu=8, gpus=1), machine("b", cpu=8, gpus=1)])
    occupy(view, "b", request(cpu=1, gpu=1, gpu_milli=400), "t0", gpus=(0,))
    scorer = FGDScore(typical((1000, 500, 1)))
    assert scorer.raw(context(view, request(cpu=1, gpu=1, gpu_milli=400))).tolist() == [50, 45]


def test_fgd_picks_the_gpu_that_keeps_the_typical_share_placeable_not_the_tightest():
    # typical: 600-milli shares. GPUs idle [1000, 700]; a 300 share on GPU 0 leaves [700, 700] (no fragment,
    # score 50); on GPU 1 it leaves 400 < 600 (fragment 400, score 40). Best fit would take GPU 1.
    view = CellView([machine("m", cpu=8, gpus=2)])
    occupy(view, "m", request(cpu=0, gpu=1, gpu_milli=300), "t0", gpus=(1,))
    scorer = FGDScore(typical((1000, 600, 1)))
    req = request(cpu=1, gpu=1, gpu_milli=300)
    assert scorer.share_scores(context(view, req)).tolist() == [[50, 40]]
    assert fgd_select_gpus(scorer)(view, 0, req) == (0,)


def test_whole_gpu_tasks_take_the_first_idle_gpus_in_the_after_state():
    idle = np.array([[1000, 400, 1000, 1000]])
    assert take_gpus(idle, 1000, 2).tolist() == [[0, 400, 0, 1000]]
    assert take_gpus(idle, 300, 1).tolist() == [[1000, 100, 1000, 1000]]


def test_the_incremental_share_update_equals_recomputing_every_after_state():
    rng = np.random.default_rng(5)
    t = typical((1000, 1000, 1), (2000, 500, 1), (500, 250, 1), (4000, 1000, 2), (1000, 0, 0),
                p=[0.3, 0.2, 0.2, 0.2, 0.1])
    idle = rng.choice([0, 100, 250, 500, 750, 1000], size=(40, 4))
    cpu_left = rng.integers(0, 8000, size=40)
    access = rng.random((40, len(t))) < 0.8
    now, after = share_frag_after(cpu_left, idle, access, t, cpu=700, milli=250)
    assert np.allclose(now, node_frag(cpu_left, idle, access, t))
    for g in range(4):
        state = idle.copy()
        state[:, g] -= 250
        assert np.allclose(after[:, g], node_frag(cpu_left - 700, state, access, t))


def test_without_typical_tasks_every_machine_scores_the_same():
    view = CellView([machine("a", gpus=2), machine("b", gpus=8)])
    assert FGDScore().raw(context(view, request(gpu=1))).tolist() == [50, 50]


@pytest.mark.parametrize("case, req", [
    ("a CPU-only task only takes cpu", request(cpu=3)),
    ("a whole-GPU task takes a fully idle GPU", request(cpu=2, gpu=1)),
    ("a two-GPU task takes two fully idle GPUs", request(cpu=2, gpu=2)),
])
def test_the_shortcut_growth_for_non_shared_tasks_equals_recomputing_the_after_state(case, req):
    view = CellView([machine(f"m{i}", cpu=8, gpus=4) for i in range(3)])
    occupy(view, "m1", request(cpu=5, gpu=1, gpu_milli=700), "a", gpus=(0,))
    occupy(view, "m2", request(cpu=1, gpu=1), "b", gpus=(3,))
    t = typical((1000, 1000, 1), (4000, 500, 1), (2000, 1000, 2), (1000, 0, 0), p=[0.4, 0.3, 0.2, 0.1])
    scorer = FGDScore(t)
    ctx = context(view, req)
    access = access_table(view, t)
    cpu = view.free[:, 0]
    after_idle = take_gpus(view.gpu_idle, req.gpu_milli, req.gpu) if req.gpu else view.gpu_idle
    expected = node_frag(cpu - req.resources.cpu, after_idle, access, t) - node_frag(cpu, view.gpu_idle, access, t)
    assert np.allclose(scorer.frag_growth(ctx), expected)
