"""Workload preparation (PROTOCOL §3): shuffle the pods, then tune total GPU demand to a ratio of capacity.

In: the workload's pods sorted by name, the cluster's total milli-GPU, a seed.
Out: the pods in submission order. The artifact draws from Go's global
``math/rand``; corral draws from NumPy's PCG64 seeded with the same seed, so
runs match the artifact statistically, not pod for pod. The tuning keeps the
artifact's quirk: a tuned-up copy is accepted while ``total + gpu_milli``
(per-GPU share, not the pod's total) stays within the target.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from corral.sim.openb.loader import OpenbPod

TUNE_RATIO = 1.3


def tune_workload(pods: Sequence[OpenbPod], cluster_gpu_milli: int, seed: int,
                  ratio: float = TUNE_RATIO) -> list[OpenbPod]:
    rng = np.random.default_rng(seed)
    order = list(pods)
    perm = rng.permutation(len(order))
    order = [order[i] for i in perm]
    target = ratio * cluster_gpu_milli
    total = sum(p.gpu_demand for p in order)
    if total < target:
        i = 0
        while True:
            # Draw in blocks: the sequence of draws is the same as one at a time.
            for idx in rng.integers(len(pods), size=256):
                p = pods[int(idx)]
                if total + p.gpu_milli > target:
                    return order
                total += p.gpu_demand
                order.append(replace(p, name=f"{p.name}-tuned-{i}"))
                i += 1
    while total > target:
        p = order.pop(int(rng.integers(len(order))))
        total -= p.gpu_demand
    return order
