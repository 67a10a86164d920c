"""The typical-pod distribution FGD measures fragmentation against (PROTOCOL §8).

In: the pod resource tuples ``(cpu, gpu_milli, num_gpu, "A|B")`` of the
workload's ORIGINAL pods (before tuning, CPU-only pods included). Out:
:class:`~corral.sched.scorers.fgd.TypicalPods` with the most popular tuples
that together cover at least 95 % of pods (the one that crosses included),
sorted by count then key, both descending, popularity renormalised to sum 1.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from corral.sched.scorers.fgd import TypicalPods

POPULARITY_THRESHOLD = 0.95


def typical_pods(keys: Iterable[tuple[int, int, int, str]], threshold: float = POPULARITY_THRESHOLD) -> TypicalPods:
    counts = Counter(keys)
    total = sum(counts.values())
    if not total:
        return TypicalPods.empty()
    ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    taken, cum = [], 0
    for key, n in ranked:
        taken.append((key, n))
        cum += n
        if cum >= threshold * total:
            break
    p = np.array([n / total for _, n in taken])
    if len(taken) < len(ranked):
        p = p / (cum / total)
    return TypicalPods(
        cpu=np.array([k[0] for k, _ in taken], dtype=np.int64),
        milli=np.array([k[1] for k, _ in taken], dtype=np.int64),
        num=np.array([k[2] for k, _ in taken], dtype=np.int64),
        models=tuple(tuple(m for m in k[3].split("|") if m) for k, _ in taken),
        p=p,
    )
