"""The completion-time scorer picks the machine with the lowest estimated completion time."""

import dataclasses
import math

import numpy as np

from corral.model.job import AppClass
from corral.sched.cellview import CellView
from corral.sched.estimates.completion import completion_s
from corral.sched.policy import SCORERS
from corral.sched.scorers.completion_time import CompletionTime
from corral.sched.testing import context, machine, request

CELL = [machine("slow"), machine("fast"), machine("never")]


def test_it_picks_the_machine_with_the_lowest_completion_time():
    # hand-computed: slow 30 + (5 + 100) / 0.5 = 240 s; fast 60 + (1 + 100) / 1 = 161 s; never: inf
    parts = {"slow": (30.0, 5.0, 100.0, 0.5), "fast": (60.0, 1.0, 100.0, 0.0), "never": (math.inf, 0.0, 100.0, 0.0)}
    assert completion_s(*parts["slow"]) == 240.0 and completion_s(*parts["fast"]) == 161.0
    scorer = CompletionTime(lambda req, m: completion_s(*parts[m]), scale_s=60.0)
    view = CellView(CELL)
    scores = scorer.score(context(view, request()))
    assert view.names[int(np.argmax(scores))] == "fast"
    assert np.allclose(scores, [1 / (1 + 4.0), 1 / (1 + 161 / 60), 0.0])


def test_it_scores_only_batch_work_and_without_estimates_prefers_nothing():
    assert CompletionTime().applies(request())
    assert not CompletionTime().applies(dataclasses.replace(request(), appclass=AppClass.LATENCY_SENSITIVE))
    scores = CompletionTime().score(context(CellView(CELL), request()))
    assert len(set(scores.tolist())) == 1
    assert isinstance(SCORERS["completion-time"](0), CompletionTime)
