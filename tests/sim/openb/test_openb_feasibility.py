"""Feasibility as PROTOCOL §5 has it, through corral's scheduler with an openb policy: shares fit on
one GPU, whole GPUs need fully idle ones (any indices), GPU models and memory are hard constraints."""

import pytest

from corral.sched.cellview import CellView
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.scorers.fgd import TypicalPods
from corral.sched.testing import machine, occupy, pending, request
from corral.sim.openb.policies import make_openb_policy


def cell():
    view = CellView([machine("t4", cpu=16, memory_gib=64, gpus=4, gpu_model="T4"),
                     machine("v100", cpu=16, memory_gib=64, gpus=2, gpu_model="V100")])
    occupy(view, "t4", request(cpu=0, gpu=1, gpu_milli=700), "s0", gpus=(0,))  # GPU 0: 300 idle
    occupy(view, "t4", request(cpu=0, gpu=1, gpu_milli=500), "s1", gpus=(2,))  # GPU 2: 500 idle
    occupy(view, "v100", request(cpu=0, gpu=1, gpu_milli=100), "s2", gpus=(1,))  # GPU 1: 900 idle
    return view


def place(view, req, policy="fgd"):
    sched = Scheduler(SchedulerConfig(relaxed_randomization=False, preemption=False),
                      policy=make_openb_policy(policy, 0, TypicalPods.empty()))
    plan = sched.schedule(view, pending(req))
    return [(p.machine, p.gpus) for p in plan.placements]


@pytest.mark.parametrize("case, req, expected", [
    ("a share goes to the machine with least GPU left, on its tightest GPU with room",
     request(cpu=1, gpu=1, gpu_milli=300), [("v100", (1,))]),
    ("a share fits on a GPU with exactly its share idle", request(cpu=1, gpu=1, gpu_milli=300, gpu_models=("T4",)),
     [("t4", (0,))]),
    ("a whole GPU needs a fully idle GPU", request(cpu=1, gpu=1, gpu_models=("V100",)), [("v100", (0,))]),
    ("two whole GPUs need two fully idle GPUs, not adjacent ones", request(cpu=1, gpu=2), [("t4", (1, 3))]),
    ("three whole GPUs fit nowhere", request(cpu=1, gpu=3), []),
    ("a GPU model outside the task's list is not a candidate", request(cpu=1, gpu=1, gpu_milli=950, gpu_models=("T4",)), [("t4", (1,))]),
    ("memory is a hard constraint", request(cpu=1, memory_gib=65, gpu=1, gpu_milli=100), []),
    ("a share larger than any GPU's idle share but smaller than the machine's total idle does not fit",
     request(cpu=1, gpu=1, gpu_milli=1000, gpu_models=("V100",)), [("v100", (0,))]),
])
def test_feasibility_and_gpu_choice(case, req, expected):
    assert place(cell(), req, "best-fit") == expected


def test_a_share_does_not_fit_when_only_the_sum_of_gpu_shares_would_hold_it():
    view = CellView([machine("m", cpu=16, gpus=2)])
    occupy(view, "m", request(cpu=0, gpu=1, gpu_milli=600), "a", gpus=(0,))
    occupy(view, "m", request(cpu=0, gpu=1, gpu_milli=600), "b", gpus=(1,))
    assert place(view, request(cpu=1, gpu=1, gpu_milli=500)) == []  # 800 idle in all, 400 per GPU
