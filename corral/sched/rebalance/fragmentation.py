"""How fragmented a machine is, as the rebalancer measures it (lower is better).

* :class:`GpuFragmentation`: FGD's measure (Weng et al., ATC'23; ``corral.sched.scorers.fgd``):
  the idle GPU milli the workload's typical tasks could not use on the machine.
* :class:`StrandedResources`: for cpu and memory, the share of a machine's free cpu and memory
  that the typical shapes cannot use because the other resource ran out first (Borg's stranded
  resources): with ``k`` copies of a shape fitting, what is left after them, as fractions of the
  machine, weighted by the shapes' popularity.
* :class:`Combined`: a weighted sum (GPU milli / 1000 and machine fractions are both "machines'
  worth of GPU or of cpu/memory", so weight 1 each is the default).

``of(view, idx)`` returns (n,) floats for machines ``idx`` as they stand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from corral.model.resources import CPU, MEMORY
from corral.sched.cellview import CellView
from corral.sched.scorers.fgd import TypicalPods, access_table, node_frag


class Measure(Protocol):
    def of(self, view: CellView, idx: np.ndarray) -> np.ndarray: ...


class GpuFragmentation:
    """FGD's fragmented GPU milli per machine for the given typical tasks."""

    unit = "GPU milli"

    def __init__(self, typical: TypicalPods, scale: float = 1.0):
        self.typical, self.scale = typical, scale
        self._access: np.ndarray | None = None

    def of(self, view: CellView, idx: np.ndarray) -> np.ndarray:
        if self._access is None or len(self._access) != len(view):
            self._access = access_table(view, self.typical)
        return self.scale * node_frag(view.free[idx, CPU], view.gpu_idle[idx], self._access[idx], self.typical)


@dataclass(frozen=True)
class StrandedResources:
    """``shapes``: (cpu milli, memory bytes, popularity) of the typical CPU/memory tasks."""

    shapes: tuple[tuple[int, int, float], ...]
    unit = "of a machine stranded"

    def of(self, view: CellView, idx: np.ndarray) -> np.ndarray:
        free = np.maximum(view.free[idx], 0)
        inv = view.inverse_capacity[idx]
        out = np.zeros(len(idx))
        total = sum(p for _, _, p in self.shapes) or 1.0
        for cpu, memory, p in self.shapes:
            k = np.minimum(free[:, CPU] // max(cpu, 1), free[:, MEMORY] // max(memory, 1))
            left_cpu = (free[:, CPU] - k * cpu) * inv[:, CPU]
            left_mem = (free[:, MEMORY] - k * memory) * inv[:, MEMORY]
            out += (p / total) * (left_cpu + left_mem)
        return out

    @classmethod
    def from_requests(cls, requests: Sequence, top: int = 4) -> "StrandedResources":
        """The ``top`` most common (cpu, memory) shapes among ``requests`` (TaskRequests)."""
        counts: dict[tuple[int, int], int] = {}
        for req in requests:
            key = (int(req.vector[CPU]), int(req.vector[MEMORY]))
            if key[0] > 0 and key[1] > 0:
                counts[key] = counts.get(key, 0) + 1
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return cls(tuple((c, m, float(n)) for (c, m), n in best))


@dataclass(frozen=True)
class Combined:
    parts: tuple[tuple[Measure, float], ...]

    def of(self, view: CellView, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(len(idx))
        for measure, weight in self.parts:
            out += weight * measure.of(view, idx)
        return out


def cell_fragmentation(measure: Measure, view: CellView) -> float:
    return float(measure.of(view, np.arange(len(view))).sum())
