"""The typical-pod distribution and the cluster fragmentation report on tiny examples."""

import numpy as np
import pytest

from corral.sched.cellview import CellView
from corral.sched.testing import machine, occupy, request
from corral.sim.openb.frag import FragReport
from corral.sim.openb.typical import typical_pods


def test_typical_pods_keep_the_most_popular_until_95_percent_and_renormalise():
    keys = [(1000, 500, 1, "")] * 60 + [(2000, 1000, 1, "")] * 30 + [(500, 0, 0, "")] * 6 + [(100, 0, 0, "")] * 4
    t = typical_pods(keys)
    assert t.cpu.tolist() == [1000, 2000, 500]  # 60 + 30 + 6 = 96 >= 95: the crossing entry is included
    assert t.p == pytest.approx([60 / 96, 30 / 96, 6 / 96])


def test_equal_counts_are_ordered_by_key_descending_and_models_are_split():
    t = typical_pods([(1000, 500, 1, "")] * 5 + [(1000, 500, 1, "A|B")] * 5, threshold=1.0)
    assert t.models == (("A", "B"), ())
    assert t.p.sum() == pytest.approx(1.0)


def test_all_pods_kept_means_no_renormalisation():
    t = typical_pods([(1, 1, 1, "")] * 3 + [(2, 2, 1, "")], threshold=1.0)
    assert t.p.tolist() == [0.75, 0.25]


def test_the_report_gives_fragmented_over_idle_gpu_and_follows_placements():
    view = CellView([machine("a", cpu=8, gpus=2), machine("b", cpu=8, gpus=1)])
    report = FragReport(view, typical_pods([(1000, 600, 1, "")]))
    assert report.amount() == 0 and report.ratio() == 0.0
    occupy(view, "a", request(cpu=1, gpu=1, gpu_milli=500), "t0", gpus=(0,))  # GPU 0 keeps 500 < 600
    assert report.amount() == 500
    assert report.ratio() == pytest.approx(round(100 * 500 / 2500, 2))
    occupy(view, "b", request(cpu=8), "t1")  # b has no cpu left: its idle GPU is fragment
    assert report.amount() == 1500
    assert report.ratio() == 60.0
