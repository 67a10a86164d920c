"""Stragglers (Apollo's and MapReduce's backup tasks): which running tasks deserve a second copy.

Pure: it sees numbers, not the master's records. A running task is a straggler once its elapsed
time exceeds ``factor`` × the ``quantile`` of its finished siblings' runtimes, and only once at
least ``min_finished`` siblings finished (before that the quantile says little). Copies are
bounded per job and per cell, so a slow cell is not flooded with duplicates; the longest-running
stragglers get the budget first. corral.master.speculation gathers the numbers and acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class SpeculationConfig:
    factor: float = 1.5  # a straggler runs longer than factor × the siblings' quantile
    quantile: float = 0.9
    min_finished: int = 5  # finished siblings needed before any copy
    min_elapsed_s: float = 0.0  # never copy a task that ran less than this
    per_job: int = 2  # extra copies running at once per job
    per_cell: int = 20  # extra copies running at once in the cell (its budget)
    avoid: tuple[str, ...] = ("rack", "power")  # the failure domains a copy never shares with its task

    def __post_init__(self) -> None:
        for name, low in (("factor", 1.0), ("min_elapsed_s", 0.0)):
            if not getattr(self, name) >= low:
                raise ValueError(f"speculation {name}: expected at least {low}, got {getattr(self, name)}")
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"speculation quantile: expected in (0, 1], got {self.quantile}")
        for name in ("min_finished", "per_job", "per_cell"):
            if getattr(self, name) < 0:
                raise ValueError(f"speculation {name}: expected 0 or more, got {getattr(self, name)}")


@dataclass(frozen=True)
class Straggler:
    task: str
    elapsed_s: float
    quantile_s: float  # the finished siblings' quantile
    threshold_s: float  # factor × quantile_s (at least min_elapsed_s)

    def reason(self, display: str, config: SpeculationConfig) -> str:
        """``speculative copy of 3.sort.alice: running 52 s, siblings' p90 5.1 s × 1.5``."""
        return (f"speculative copy of {display}: running {seconds(self.elapsed_s)}, siblings' "
                f"p{config.quantile * 100:g} {seconds(self.quantile_s)} × {config.factor:g}")


def seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.2g} s"


def sibling_quantile(runtimes: Sequence[float], q: float) -> float:
    """The ``q`` quantile of finished siblings' runtimes (linear interpolation between ranks).
    The one place the estimate comes from: a runtime estimator may replace it."""
    return float(np.quantile(np.asarray(runtimes, dtype=float), q))


def stragglers(runtimes: Sequence[float], running: Sequence[tuple[str, float]], config: SpeculationConfig,
               job_copies: int, cell_left: int) -> list[Straggler]:
    """The tasks of one job to copy now. ``runtimes``: its finished tasks' runtimes; ``running``:
    (task, elapsed seconds) of its running tasks without a copy; ``job_copies``: its copies running;
    ``cell_left``: copies the cell's budget still allows."""
    if len(runtimes) < max(config.min_finished, 1) or not running:
        return []
    allowed = min(config.per_job - job_copies, cell_left)
    if allowed <= 0:
        return []
    p = sibling_quantile(runtimes, config.quantile)
    threshold = max(config.factor * p, config.min_elapsed_s)
    slow = sorted(((elapsed, task) for task, elapsed in running if elapsed > threshold), key=lambda x: (-x[0], x[1]))
    return [Straggler(task, elapsed, p, threshold) for elapsed, task in slow[:allowed]]
