"""Random, soft constraints and failure-domain spreading."""

import numpy as np

from corral.sched.cellview import CellView
from corral.sched.scorers import DomainSpread, RandomScore, SoftConstraints
from corral.sched.testing import context, machine, occupy, request


def test_soft_constraints_score_the_weighted_share_of_preferences_met():
    view = CellView([machine("a", ssd="true", zone="z1"), machine("b", ssd="true"), machine("c")])
    req = request(preferences=(("ssd == true", 3.0), ("zone == z1", 1.0)))
    assert SoftConstraints().score(context(view, req)).tolist() == [1.0, 0.75, 0.0]


def test_spreading_prefers_racks_with_fewer_of_the_jobs_tasks():
    view = CellView([machine("a", rack="r1"), machine("b", rack="r1"), machine("c", rack="r2")])
    req = request(spread="rack", job="web")
    occupy(view, "a", req, "web/0", job="web")
    scores = DomainSpread().score(context(view, req))
    assert scores[2] > scores[0] == scores[1]


def test_random_scores_are_reproducible_for_a_seed_and_differ_between_seeds():
    view = CellView([machine(f"m{i}") for i in range(200)])
    ctx = context(view, request())
    first, again, other = RandomScore(1).score(ctx), RandomScore(1).score(ctx), RandomScore(2).score(ctx)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert ((0 <= first) & (first < 1)).all()
    # Roughly uniform: every decile gets some machines.
    assert len(set((first * 10).astype(int))) == 10


def test_a_random_score_changes_when_the_machine_changes():
    view = CellView([machine("m0"), machine("m1")])
    before = RandomScore(1).score(context(view, request()))
    occupy(view, "m0", request(), "old/0")
    after = RandomScore(1).score(context(view, request()))
    assert before[0] != after[0] and before[1] == after[1]
