"""The cluster's fragmentation report (PROTOCOL §9): fragmented GPU milli over all machines and
its ratio to the idle GPU milli, as the artifact logs after every pod event.

Per-machine fragmentation (``corral.sched.scorers.fgd.node_frag``) is kept in an
array and recomputed only for machines that changed since the last report.
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import CPU
from corral.sched.cellview import CellView
from corral.sched.scorers.fgd import TypicalPods, access_table, node_frag


class FragReport:
    def __init__(self, view: CellView, typical: TypicalPods):
        self.view = view
        self.typical = typical
        self.access = access_table(view, typical)
        self.frag = node_frag(view.free[:, CPU], view.gpu_idle, self.access, typical)
        self.seen = view.version.copy()

    def refresh(self) -> None:
        view = self.view
        stale = np.flatnonzero(view.version != self.seen)
        if len(stale):
            self.frag[stale] = node_frag(view.free[stale, CPU], view.gpu_idle[stale], self.access[stale], self.typical)
            self.seen[stale] = view.version[stale]

    def amount(self) -> float:
        """Fragmented GPU milli in the cell."""
        self.refresh()
        return float(self.frag.sum())

    def ratio(self) -> float:
        """Fragmented share of the idle GPU milli, in percent, printed to 2 decimals as the artifact does."""
        idle = float(self.view.gpu_idle.sum())
        amount = self.amount()
        return float(f"{100.0 * amount / idle:.2f}") if idle > 0 else 0.0
