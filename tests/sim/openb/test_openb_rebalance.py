"""openb with the rebalancer, and the LP bound on GPU allocation, on a small trace written here."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from corral.model.machine import Machine
from corral.model.resources import Resources
from corral.sim.openb.bound import bound_for
from corral.sim.openb.loader import MiB, load_nodes, load_pods
from corral.sim.openb.lp import certified_bound, simplex_max
from corral.sim.openb.rebalance import OpenbRebalance, run_rebalanced


def write_trace(folder, seed: int = 0, pods: int = 80):
    rng = np.random.default_rng(seed)
    with open(folder / "openb_node_list_gpu_node.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sn", "cpu_milli", "memory_mib", "gpu", "model"])
        for i in range(4):
            w.writerow([f"t4-{i}", 16000, 65536, 2, "T4"])
        for i in range(3):
            w.writerow([f"g2-{i}", 32000, 131072, 8, "G2"])
    shapes = [(2000, 1, 250), (4000, 1, 500), (4000, 1, 700), (8000, 1, 1000), (8000, 2, 1000),
              (16000, 4, 1000), (4000, 0, 0)]
    with open(folder / "openb_pod_list_default.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec"])
        for i in range(pods):
            cpu, num, milli = shapes[int(rng.integers(len(shapes)))]
            w.writerow([f"pod-{i:04d}", cpu, 4096, num, milli, ""])
    return folder


def test_the_simplex_and_its_certified_bound_agree_with_a_brute_force_optimum():
    rng = np.random.default_rng(3)
    for _ in range(20):
        A = rng.integers(0, 5, size=(3, 3)).astype(float)
        b = rng.integers(1, 10, size=3).astype(float)
        c = rng.integers(1, 5, size=3).astype(float)
        A[0] = np.maximum(A[0], 1)  # bounded
        value, x, y = simplex_max(c, A, b)
        assert (A @ x <= b + 1e-9).all() and (x >= -1e-12).all()
        # brute force over the vertices: every basis of the 3 + 3 constraints
        rows = np.vstack([A, -np.eye(3)])
        rhs = np.concatenate([b, np.zeros(3)])
        best = 0.0
        for pick in itertools.combinations(range(6), 3):
            M = rows[list(pick)]
            if abs(np.linalg.det(M)) < 1e-9:
                continue
            v = np.linalg.solve(M, rhs[list(pick)])
            if (rows @ v <= rhs + 1e-9).all():
                best = max(best, float(c @ v))
        assert value == pytest.approx(best, abs=1e-7)
        assert certified_bound(c, A, b, y, np.zeros(3, dtype=np.int64)) >= best - 1e-7


def test_the_bound_is_below_capacity_when_cpu_runs_out_first():
    nodes = [Machine(f"m{i}", Resources(cpu=8000, memory=64 * 2**30, gpu=1), "T4") for i in range(3)]
    from corral.sim.openb.loader import OpenbPod
    from corral.sched.request import TaskRequest

    req = TaskRequest(Resources(cpu=8000, memory=MiB, gpu=1, gpu_milli=500), priority=0)
    pods = [OpenbPod(f"p{i}", 8000, 1, 1, 500, (), req) for i in range(10)]
    bound, lp = bound_for(nodes, pods)
    assert lp == pytest.approx(50.0) and bound == pytest.approx(50.0, abs=1e-6)


@pytest.mark.parametrize("policy", ["random", "best-fit", "fgd", "corral"])
def test_the_bound_holds_for_every_placement_the_sim_reached_with_and_without_the_rebalancer(tmp_path, policy):
    trace = write_trace(tmp_path)
    nodes, pods = load_nodes(trace), load_pods(trace)
    from corral.sim.openb.tuning import tune_workload

    for seed in (1, 2):
        bound, lp = bound_for(nodes, tune_workload(pods, sum(m.capacity.gpu for m in nodes) * 1000, seed))
        assert bound >= lp - 1e-6
        for on in (False, True):
            run = run_rebalanced(trace, "default", policy, seed, OpenbRebalance(enabled=on, interval=10, max_moves=4))
            assert bound + 1e-6 >= run["alloc_final"], (run, bound)
            if run["alloc_130"] is not None:
                assert bound + 0.005 >= run["alloc_130"]
            if not on:
                assert run["moves"] == 0


def test_the_rebalancer_moves_pods_and_reports_them(tmp_path):
    trace = write_trace(tmp_path, seed=5, pods=120)
    runs = [run_rebalanced(trace, "default", "best-fit", s, OpenbRebalance(interval=5, max_moves=8)) for s in (1, 2, 3)]
    assert sum(r["moves"] for r in runs) > 0
    for r in runs:
        assert r["moves"] == sum(r["moves_by_goal"].values())
