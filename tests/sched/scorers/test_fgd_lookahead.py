"""corral's openb policy: FGD first, then look-ahead fragmentation (copies the GPUs and cpu allow),
then packing, on cells small enough to check by hand."""

import numpy as np
import pytest

from corral.sched.cellview import CellView
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.scorers.fgd import TypicalPods, node_frag
import corral.sched.scorers.fgd_lookahead as LA
from corral.sched.scorers.fgd_lookahead import FragLookahead, RareShapes, copies_frag, copies_parts, lookahead_policy
from corral.sched.testing import context, machine, occupy, pending, request


def typical(*pods, p=None):
    p = np.full(len(pods), 1 / len(pods)) if p is None else np.asarray(p, dtype=float)
    return TypicalPods(np.array([t[0] for t in pods]), np.array([t[1] for t in pods]), np.array([t[2] for t in pods]),
                       tuple(() for _ in pods), p)


def lookahead(cpu_left, idle, t):
    total, copies = copies_parts(np.array(idle), t)
    return copies_frag(total, copies, np.array(cpu_left), np.ones((len(idle), len(t)), dtype=bool), t)


@pytest.mark.parametrize("case, cpu_left, idle, pods, expected", [
    ("two 470 shares fill an idle GPU to 940, leaving 60 that FGD does not count",
     [8000], [[1000]], [(1000, 470, 1)], 60),
    ("cpu for only two whole-GPU tasks strands six of eight idle GPUs",
     [12000], [[1000] * 8], [(6000, 1000, 1)], 6000),
    ("a two-GPU task is counted in pairs of idle GPUs", [64000], [[1000, 1000, 1000, 0]], [(1000, 1000, 2)], 1000),
    ("a CPU-only typical task still counts all idle GPU as fragment", [8000], [[500, 0]], [(1000, 0, 0)], 500),
])
def test_lookahead_fragmentation_by_hand(case, cpu_left, idle, pods, expected):
    assert lookahead(cpu_left, idle, typical(*pods))[0] == pytest.approx(expected)


def test_fgd_sees_no_fragment_where_cpu_strands_gpus_but_the_lookahead_does():
    t = typical((6000, 1000, 1))
    idle = np.array([[1000] * 8])
    assert node_frag(np.array([12000]), idle, np.ones((1, 1), dtype=bool), t)[0] == 0
    assert lookahead([12000], idle, t)[0] == 6000


def test_a_cpu_only_task_goes_where_its_cpu_is_not_needed_by_idle_gpus():
    # FGD ties: on either machine one typical GPU task still fits afterwards. The look-ahead sees
    # that on "gpus" the task halves the copies the idle GPUs could take; on "full" it costs nothing.
    view = CellView([machine("gpus", cpu=8, gpus=2), machine("full", cpu=8, gpus=2)])
    occupy(view, "full", request(cpu=0, gpu=2), "g", gpus=(0, 1))
    t = typical((4000, 1000, 1))
    scorer = FragLookahead(t)
    ctx = context(view, request(cpu=4))
    assert scorer.raw(ctx).tolist() == [50, 50]
    assert scorer.lookahead_growth(ctx)[:, 0].tolist() == pytest.approx([1000, 0])
    sched = Scheduler(SchedulerConfig(relaxed_randomization=False, preemption=False), policy=lookahead_policy(t))
    assert [p.machine for p in sched.schedule(view, pending(request(cpu=4))).placements] == ["full"]


def test_among_full_ties_the_machine_left_with_less_idle_gpu_wins():
    view = CellView([machine("idle", cpu=32, gpus=4), machine("busy", cpu=32, gpus=4)])
    occupy(view, "busy", request(cpu=0, gpu=2), "g", gpus=(0, 1))
    t = typical((1000, 1000, 1))
    scorer = FragLookahead(t)
    score = scorer.score(context(view, request(cpu=1, gpu=1)))
    assert score[1] > score[0]
    view.rank[:] = [0, 1]  # the tie-break rank would favour "idle"
    sched = Scheduler(SchedulerConfig(relaxed_randomization=False, preemption=False), policy=lookahead_policy(t))
    assert [p.machine for p in sched.schedule(view, pending(request(cpu=1, gpu=1))).placements] == ["busy"]


def test_a_shared_task_takes_the_gpu_that_leaves_room_for_more_copies():
    # typical: 470 shares. GPUs idle [1000, 700]. A 230 share on GPU 1 leaves 470 (one more copy fits
    # exactly) and GPU 0 whole (two copies): nothing lost. On GPU 0 it leaves 770 (one copy, 300 lost).
    view = CellView([machine("m", cpu=32, gpus=2)])
    occupy(view, "m", request(cpu=0, gpu=1, gpu_milli=300), "s", gpus=(1,))
    t = typical((1000, 470, 1))
    sched = Scheduler(SchedulerConfig(relaxed_randomization=False, preemption=False), policy=lookahead_policy(t))
    plan = sched.schedule(view, pending(request(cpu=1, gpu=1, gpu_milli=230)))
    assert plan.placements[0].gpus == (1,)


def test_without_typical_tasks_the_policy_still_places_by_packing():
    view = CellView([machine("a", cpu=8, gpus=2), machine("b", cpu=8, gpus=2)])
    occupy(view, "b", request(cpu=0, gpu=1), "g", gpus=(0,))
    sched = Scheduler(SchedulerConfig(relaxed_randomization=False, preemption=False),
                      policy=lookahead_policy(TypicalPods.empty()))
    assert [p.machine for p in sched.schedule(view, pending(request(cpu=1, gpu=1))).placements] == ["b"]


def _reference_keys(view, req, t):
    """Keys 1-2 computed term by term from FGD's scorer and copies_frag (the definition), per GPU for
    a shared-GPU task, else one column; None where the task does not fit."""
    from corral.sched.scorers.fgd import FGDScore, sigmoid_score, take_gpus

    fgd = FGDScore(t)
    ctx = context(view, req)
    cpu_left = ctx.free[:, 0]
    access = np.ones((len(view), len(t)), dtype=bool)
    now = lookahead(cpu_left, ctx.gpu_idle, t)
    if req.is_gpu_share:
        fgd_keys = fgd.share_scores(ctx)
        out = np.full(fgd_keys.shape, np.nan)
        for g in range(ctx.gpu_idle.shape[1]):
            idle = ctx.gpu_idle.astype(np.int64).copy()
            idle[:, g] -= req.gpu_milli
            total, copies = copies_parts(np.maximum(idle, 0), t)
            after = copies_frag(total, copies, cpu_left - req.resources.cpu, access, t)
            out[:, g] = np.where(fgd_keys[:, g] >= 0, fgd_keys[:, g] - 24 * (after - now) / 8000, np.nan)
        return out
    idle = take_gpus(ctx.gpu_idle, req.gpu_milli, req.gpu) if req.gpu else ctx.gpu_idle
    total, copies = copies_parts(idle, t)
    after = copies_frag(total, copies, cpu_left - req.resources.cpu, access, t)
    return (sigmoid_score(-fgd.frag_growth(ctx)) - 24 * (after - now) / 8000)[:, None]


@pytest.mark.parametrize("seed", range(4))
def test_the_fused_score_and_gpu_choice_equal_the_terms_computed_one_by_one(seed):
    # A small random cell and typical mix: the scorer's single fused evaluation (per-machine "now"
    # cache, distinct (machine, idle) pairs, remembered GPU) must give FGD - 24 x look-ahead growth.
    rng = np.random.default_rng(seed)
    view = CellView([machine(f"m{i}", cpu=int(rng.choice([8, 16, 32])), gpus=int(rng.choice([1, 2, 4, 8])))
                     for i in range(6)])
    for i in range(6):
        for g in range(int(view.gpu_count[i])):
            used = int(rng.choice([0, 0, 230, 470, 500, 1000]))
            if used:
                occupy(view, f"m{i}", request(cpu=0.5, memory_gib=0.1, gpu=1, gpu_milli=used), f"t{i}.{g}", gpus=(g,))
    t = typical((4000, 470, 1), (2000, 230, 1), (8000, 1000, 1), (12000, 1000, 2), (6000, 0, 0))
    scorer = FragLookahead(t)
    checked = 0
    for req in (request(cpu=2, gpu=1, gpu_milli=470), request(cpu=1, gpu=1, gpu_milli=230), request(cpu=4),
                request(cpu=4, gpu=1), request(cpu=8, gpu=2), request(cpu=2, gpu=2, gpu_milli=500)):
        for _ in range(2):  # second time: from the per-machine cache
            ctx = context(view, req)
            got = scorer.score(ctx)
            ref = _reference_keys(view, req, t)
            fits = (np.all(ctx.free >= req.vector, axis=1) & ((ctx.gpu_idle >= req.gpu_milli).sum(axis=1) >= req.gpu)
                    if req.gpu else np.all(ctx.free >= req.vector, axis=1))
            gpu_left = (ctx.free[:, 3] - req.resources.gpu_total_milli) / 8000
            expected = (np.where(np.isnan(ref), -np.inf, ref).max(axis=1) - 1e-4 * gpu_left) / 100
            assert got[fits] == pytest.approx(expected[fits])
            assert (got[~fits] < -1e6).all()
            checked += int(fits.sum())
        if req.is_gpu_share:
            for m in np.flatnonzero(fits):
                best = int(np.nanargmax(ref[m]))
                assert scorer.select_gpus(view, int(m), req) == (best,)  # remembered from scoring
                scorer._best_gpu.clear()
                assert scorer.select_gpus(view, int(m), req) == (best,)  # computed afresh
                scorer.score(context(view, req))
    assert checked >= 20


def test_rare_shapes_are_the_untypical_gpu_shapes_and_the_largest_common_cpu_only_one():
    t = typical((4000, 1000, 1), (8000, 0, 0))
    keys = [(4000, 1000, 1, "")] * 90 + [(8000, 0, 0, "")] * 5 + [(32000, 0, 0, "")] * 3 + [(2000, 0, 0, "")] * 1 \
        + [(120000, 1000, 8, "")] * 1
    rare = RareShapes.from_pods(keys, t)
    # (2000, 0, 0) is 1 % of the pods like (120000, 1000, 8) but smaller than (32000, 0, 0)
    assert rare.keys == ((120000, 1000, 8, ()), (32000, 0, 0, ()))
    assert rare.counts == (1, 3)


def test_rare_shape_weights_are_pods_per_able_machine_times_their_gpu_milli(monkeypatch):
    monkeypatch.setattr(LA, "RESERVE_WEIGHT", 1.0)
    monkeypatch.setattr(LA, "CPU_RESERVE_WEIGHT", 2.0)
    view = CellView([machine("big", cpu=128, memory_gib=512, gpus=8), machine("g2", cpu=96, gpus=8),
                     machine("t4", cpu=16, gpus=2)])
    rare = RareShapes(((120000, 1000, 8, ()), (120200, 1000, 8, ()), (32000, 0, 0, ())), (1, 1, 4))
    cpu, milli, num, weight = rare.weights(view)
    # The two 120-core shapes need "big" alone: one group, its hardest member, 2 pods per able
    # machine capped at 1, x 8000 milli x 3 points / 1000 = 24. The 32-core CPU-only task: a flat
    # 2 points on the machines able to take it.
    assert cpu.tolist() == [120200, 32000] and milli.tolist() == [1000, 0] and num.tolist() == [8, 0]
    assert weight.tolist() == [[24.0, 2.0], [0.0, 2.0], [0.0, 0.0]]
    half = RareShapes(((120000, 1000, 8, ()), (32000, 0, 0, ())), (1, 1)).weights(view)[3]
    assert half.tolist() == [[24.0, 2.0], [0.0, 2.0], [0.0, 0.0]]  # 1 pod per able machine: still full
    quarter = RareShapes(((64000, 1000, 8, ()),), (1,)).weights(view)[3]  # 1 pod, 2 able machines
    assert quarter.tolist() == [[12.0], [12.0], [0.0]]


def test_a_task_keeps_off_the_last_machine_able_to_host_a_rare_large_shape(monkeypatch):
    monkeypatch.setattr(LA, "RESERVE_WEIGHT", 1.0)
    view = CellView([machine("big", cpu=128, memory_gib=512, gpus=8), machine("g2", cpu=96, gpus=8)])
    view.rank[:] = [0, 1]  # ties would go to "big"
    t = typical((4000, 1000, 1))
    rare = RareShapes(((120000, 1000, 8, ()),), (1,))
    scorer = FragLookahead(t, rare)
    ctx = context(view, request(cpu=4, gpu=1))
    plain = FragLookahead(t).score(ctx)
    assert plain[0] == plain[1]
    # on "big" the 120-core 8-GPU shape no longer fits afterwards: 1 pod per able machine x 24 points
    assert (plain - scorer.score(ctx)).tolist() == pytest.approx([0.24, 0.0])
    sched = Scheduler(SchedulerConfig(relaxed_randomization=False, preemption=False), policy=lookahead_policy(t, rare))
    assert [p.machine for p in sched.schedule(view, pending(request(cpu=4, gpu=1))).placements] == ["g2"]


def test_a_cpu_only_task_leaves_room_for_the_largest_common_cpu_only_task(monkeypatch):
    monkeypatch.setattr(LA, "CPU_RESERVE_WEIGHT", 1.0)
    # "a" has 40 cores free, "b" 34: 4 more cores keep a 32-core hole on "a" but not on "b".
    view = CellView([machine("a", cpu=40, gpus=2), machine("b", cpu=34, gpus=2)])
    occupy(view, "a", request(cpu=0, gpu=1), "ga", gpus=(0,))
    occupy(view, "b", request(cpu=0, gpu=1), "gb", gpus=(0,))
    t = typical((4000, 1000, 1), (32000, 0, 0))
    rare = RareShapes(((32000, 0, 0, ()),), (1,))
    scorer = FragLookahead(t, rare)
    ctx = context(view, request(cpu=4))
    # a flat point lost on "b" (scores are points / 100)
    assert (FragLookahead(t).score(ctx) - scorer.score(ctx)).tolist() == pytest.approx([0.0, 0.01])
    # a GPU task does not pay it
    gpu_ctx = context(view, request(cpu=4, gpu=1))
    assert (scorer.score(gpu_ctx) > -1).all()
    assert FragLookahead(t).score(gpu_ctx).tolist() == scorer.score(gpu_ctx).tolist()
    view.rank[:] = [1, 0]  # ties would go to "b"
    sched = Scheduler(SchedulerConfig(relaxed_randomization=False, preemption=False), policy=lookahead_policy(t, rare))
    assert [p.machine for p in sched.schedule(view, pending(request(cpu=4))).placements] == ["a"]


def test_shape_memory_is_the_mean_memory_of_the_pods_of_each_shape_models_aside():
    pods = [((4000, 1000, 1, ""), 10), ((4000, 1000, 1, "G2"), 20), ((8000, 0, 0, ""), 7)]
    assert LA.shape_memory(pods) == {(4000, 1000, 1): 15, (8000, 0, 0): 7}


@pytest.mark.parametrize("memory_gib, expected", [
    (400, 0),  # 8 copies fit by GPUs, 16 by cpu, 8 by memory: nothing stranded
    (100, 6000),  # memory for 2 copies of 48 GiB: 6 of 8 idle GPUs stranded
    (40, 8000),  # not one copy: all idle GPU is fragment
])
def test_the_lookahead_counts_the_copies_memory_allows(monkeypatch, memory_gib, expected):
    monkeypatch.setattr(LA, "MEMORY_LOOKAHEAD", True)
    view = CellView([machine("m", cpu=64, memory_gib=memory_gib, gpus=8)])
    t = typical((4000, 1000, 1))
    scorer = FragLookahead(t, memory={(4000, 1000, 1): 48 * 2**30})
    idx = np.array([0])
    now = scorer._machine_now(view, idx, view.free[idx, 0], view.free[idx, 1], view.gpu_idle[idx])
    assert now[5][0] == pytest.approx(expected)
