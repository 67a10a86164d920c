"""An upper bound on the GPU allocation any placement of a workload's pods could reach.

The LP relaxation over machine *types* (machines with equal cpu, memory, GPU count and model):
``x[c, g]`` = how many pods of class ``c`` (equal cpu, memory, GPUs, share, allowed models) go on
machines of type ``g``, allowed only where one such pod fits an empty machine of that type. Rows:

* per type, the cpu, memory and GPU milli of its ``N_g`` machines hold the pods placed there;
* per type and k = 1, 2, 3, at most ``k`` tasks whose per-GPU share exceeds ``1000/(k+1)`` share
  one GPU, so such pods take at most ``k · GPUs`` GPU slots there;
* per class, no more pods than arrived.

Any placement (of any subset of the pods, by any policy) gives such an ``x``; so its allocated
GPU milli is at most the LP's optimum, which is at most ``b·y`` for any dual-feasible ``y``
(weak duality; ``lp.certified_bound`` checks feasibility). GPU allocation is a share of the
cluster's GPU milli; CPU-only pods are worth nothing in it and are left out. A subset of the pods
gives a smaller LP, so the bound over a run's whole tuned pod list also holds at every event of
that run, the 130 % bucket included.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from corral.sim.openb.experiment import _inputs
from corral.sim.openb.loader import OpenbPod, normalise_workload
from corral.sim.openb.lp import certified_bound, simplex_max
from corral.sim.openb.tuning import tune_workload
from corral.model.machine import Machine

MiB = 2**20


def _types(nodes: list[Machine]) -> list[tuple[tuple[int, int, int, str], int]]:
    counts = Counter((m.capacity.cpu, m.capacity.memory, m.capacity.gpu, m.gpu_model) for m in nodes)
    return sorted(counts.items())


def bound_for(nodes: list[Machine], pods: list[OpenbPod]) -> tuple[float, float]:
    """(certified bound, LP optimum) on the GPU allocation in percent of the cluster's GPU milli."""
    types = _types(nodes)
    total = sum(m.capacity.gpu for m in nodes) * 1000
    classes = Counter((p.cpu, p.memory_mib * MiB, p.num_gpu, p.gpu_milli, p.models) for p in pods if p.gpu_demand)
    keys = sorted(classes)
    cols = [(ci, gi) for ci, (cpu, mem, num, milli, models) in enumerate(keys)
            for gi, ((gcpu, gmem, ggpu, model), _) in enumerate(types)
            if cpu <= gcpu and mem <= gmem and num <= ggpu and (not models or model in models)]
    k_cuts = (1, 2, 3)
    rows_per_type = 3 + len(k_cuts)
    m = rows_per_type * len(types) + len(keys)
    A = np.zeros((m, len(cols)))
    b = np.zeros(m)
    c = np.zeros(len(cols))
    fix = np.zeros(len(cols), dtype=np.int64)
    for gi, ((gcpu, gmem, ggpu, _), count) in enumerate(types):
        r = rows_per_type * gi
        b[r:r + 3] = count * gcpu, count * gmem, count * ggpu * 1000
        for k, cut in enumerate(k_cuts):
            b[r + 3 + k] = cut * count * ggpu
    for j, (ci, gi) in enumerate(cols):
        cpu, mem, num, milli, _ = keys[ci]
        r = rows_per_type * gi
        A[r, j], A[r + 1, j], A[r + 2, j] = cpu, mem, num * milli
        for k, cut in enumerate(k_cuts):
            if milli * (cut + 1) > 1000:
                A[r + 3 + k, j] = num
        class_row = rows_per_type * len(types) + ci
        A[class_row, j] = 1.0
        fix[j] = class_row
        c[j] = 100.0 * num * milli / total
    for ci, key in enumerate(keys):
        b[rows_per_type * len(types) + ci] = classes[key]
    # Scale rows to about 1 for the simplex's tolerances (the bound is invariant under it).
    scale = np.where(b > 0, b, 1.0)
    A_s, b_s = A / scale[:, None], b / scale
    value, _, y = simplex_max(c, A_s, b_s)
    return certified_bound(c, A_s, b_s, y, fix), value


def allocation_bound(trace_dir: Path, workload: str, seeds) -> dict:
    """Per seed (each tunes its own pod list to 130 %) the bound; and the largest of them."""
    workload = normalise_workload(workload, trace_dir)
    nodes, pods, _, _ = _inputs(str(trace_dir), workload)
    total = sum(m.capacity.gpu for m in nodes) * 1000
    per_seed = {}
    for seed in seeds:
        order = tune_workload(pods, total, seed)
        bound, lp = bound_for(nodes, order)
        per_seed[str(seed)] = {"bound": round(bound, 3), "lp": round(lp, 3)}
    return {"per_seed": per_seed, "min": min(v["bound"] for v in per_seed.values()),
            "max": max(v["bound"] for v in per_seed.values())}
