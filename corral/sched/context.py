"""What a checker or scorer sees: a request and a set of machines (rows of the view).

``free`` and ``gpu_idle`` default to the machines' current state but may be
*hypothetical* (the state after placing k more copies of the task, or after
evicting preemption victims); checkers and scorers read them from here, never
from the view directly, so one vectorised code path serves every case.
``room`` (reclamation: capacity less reservations) is hypothetical only where
the caller says so; otherwise the reclamation checker derives it from ``free``.
"""

from __future__ import annotations

import numpy as np

from corral.sched.cellview import CellView
from corral.sched.request import TaskRequest


class EvalContext:
    __slots__ = ("view", "req", "idx", "free", "room", "_gpu_idle", "_capacity", "_inverse_capacity")

    def __init__(
        self,
        view: CellView,
        req: TaskRequest,
        idx: np.ndarray,
        free: np.ndarray | None = None,
        gpu_idle: np.ndarray | None = None,
        room: np.ndarray | None = None,
    ):
        self.view = view
        self.req = req
        self.idx = idx
        self.free = view.free[idx] if free is None else free
        self._gpu_idle = gpu_idle
        self.room = room  # None: capacity - reserved, less what ``free`` says was placed since
        self._capacity = None
        self._inverse_capacity = None

    @property
    def capacity(self) -> np.ndarray:
        if self._capacity is None:
            self._capacity = self.view.capacity[self.idx]
        return self._capacity

    @property
    def inverse_capacity(self) -> np.ndarray:
        if self._inverse_capacity is None:
            self._inverse_capacity = self.view.inverse_capacity[self.idx]
        return self._inverse_capacity

    @property
    def gpu_idle(self) -> np.ndarray:
        if self._gpu_idle is None:
            self._gpu_idle = self.view.gpu_idle[self.idx]
        return self._gpu_idle

    def __len__(self) -> int:
        return len(self.idx)
