"""The FGD paper's random policy: a fresh uniform draw per decision, never cached."""

from collections import Counter

import numpy as np

from corral.sched.cellview import CellView
from corral.sched.scorers.uniform_random import UniformRandom
from corral.sched.testing import context, machine, occupy, request


def test_every_machine_is_chosen_about_equally_often_and_draws_are_fresh():
    view = CellView([machine(f"m{i}", gpus=2) for i in range(4)])
    scorer = UniformRandom(seed=7)
    ctx = context(view, request(gpu=1))
    picks = Counter(int(np.argmax(scorer.score(ctx))) for _ in range(4000))
    assert set(picks) == {0, 1, 2, 3}
    assert all(850 < n < 1150 for n in picks.values())
    assert not scorer.machine_local and not scorer.predictable


def test_the_same_seed_gives_the_same_draws():
    view = CellView([machine(f"m{i}") for i in range(5)])
    ctx = context(view, request())
    assert np.array_equal(UniformRandom(3).score(ctx), UniformRandom(3).score(ctx))


def test_a_shared_task_gets_a_uniform_gpu_among_those_with_room():
    view = CellView([machine("m", gpus=4)])
    occupy(view, "m", request(gpu=1, gpu_milli=800), "t0", gpus=(2,))
    scorer = UniformRandom(seed=1)
    picks = Counter(scorer.select_gpus(view, 0, request(gpu=1, gpu_milli=500))[0] for _ in range(3000))
    assert set(picks) == {0, 1, 3}
    assert all(850 < n < 1150 for n in picks.values())


def test_whole_gpus_go_to_the_first_idle_ones():
    view = CellView([machine("m", gpus=4)])
    occupy(view, "m", request(gpu=1), "t0", gpus=(0,))
    assert UniformRandom(1).select_gpus(view, 0, request(gpu=2)) == (1, 2)
