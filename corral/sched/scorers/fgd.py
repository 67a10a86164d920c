"""FGD: fragmentation gradient descent (Weng et al., USENIX ATC'23), the paper's policy.

A machine's *fragmentation* is the idle GPU milli that the typical tasks of
the workload could not use there (wrong GPU model, too few GPUs with their
share idle, or too little cpu), weighted by how popular each typical task is.
FGD places a task where fragmentation grows least: the score is
``int(sigmoid((F(now) - F(after)) / 1000) * 100)`` (PROTOCOL §6), and a
shared-GPU task is scored per GPU of the machine and gets the best GPU
(first index among equal scores) — :func:`fgd_select_gpus` is that choice.

The typical tasks come from the workload (the openb experiment computes them
from the trace, ``corral.sim.openb.typical``); without them every machine
scores the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from corral.model.resources import CPU, GPU_MILLI_WHOLE
from corral.sched.cellview import CellView
from corral.sched.context import EvalContext
from corral.sched.gpus import select_gpus_best
from corral.sched.request import TaskRequest
from corral.sched.scorers.base import Scorer

FRAG_SCALE = 1000.0


@dataclass(frozen=True, eq=False)
class TypicalPods:
    """The typical tasks: arrays over T task shapes, most popular first; ``p`` sums to 1."""

    cpu: np.ndarray  # (T,) milli-cores
    milli: np.ndarray  # (T,) per-GPU milli, 0 for CPU-only
    num: np.ndarray  # (T,) GPUs
    models: tuple[tuple[str, ...], ...]  # (T,) allowed GPU models, () = any
    p: np.ndarray  # (T,) popularity

    def __len__(self) -> int:
        return len(self.p)

    @cached_property
    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct per-GPU shares and, per typical task, the index of its share."""
        values, which = np.unique(self.milli, return_inverse=True)
        return values.astype(np.int32), which

    @cached_property
    def gpu_task(self) -> np.ndarray:
        return self.milli > 0

    @cached_property
    def shapes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Typical GPU tasks grouped by (cpu, share, GPUs), models aside: per shape its cpu, share
        index (into ``shares``), GPUs and share; and the (T, shapes) one-hot of each task's shape."""
        keys = sorted({(int(c), int(m), int(g)) for c, m, g, t in zip(self.cpu, self.milli, self.num, self.gpu_task) if t})
        index = {k: i for i, k in enumerate(keys)}
        onehot = np.zeros((len(self), len(keys)))
        for t in range(len(self)):
            if self.gpu_task[t]:
                onehot[t, index[(int(self.cpu[t]), int(self.milli[t]), int(self.num[t]))]] = 1.0
        shares = list(self.shares[0])
        return (np.array([k[0] for k in keys], dtype=np.int64), np.array([shares.index(k[1]) for k in keys], dtype=np.int64),
                np.array([k[2] for k in keys], dtype=np.int64), np.array([k[1] for k in keys], dtype=np.int64), onehot)

    def shape_weights(self, access: np.ndarray) -> np.ndarray:
        """(..., T) bool access -> (..., shapes): popularity of the typical GPU tasks of each shape
        that may use the machine."""
        return (access * self.p) @ self.shapes[4]

    @cached_property
    def p_sum(self) -> float:
        return float(self.p.sum())

    @classmethod
    def empty(cls) -> "TypicalPods":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, (), np.zeros(0))

    def access(self, model_names: Sequence[str | None]) -> np.ndarray:
        """``(len(model_names), T)``: may typical task t use a machine whose GPU model is that name."""
        out = np.ones((len(model_names), len(self)), dtype=bool)
        for t, allowed in enumerate(self.models):
            if allowed:
                out[:, t] = [name in allowed for name in model_names]
        return out


def access_table(view: CellView, typical: TypicalPods) -> np.ndarray:
    """``(M, T)`` bool: may typical task t use machine m's GPU model."""
    names: list[str | None] = [None] * len(view.gpu_models.codes)
    for name, code in view.gpu_models.codes.items():
        names[code] = name
    table = typical.access(names + [None])  # last row: machines without a model (MISSING = -1)
    return table[view.gpu_model]


def gpu_parts(gpu_idle: np.ndarray, typical: TypicalPods) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per machine state: idle GPU milli (n,), and per distinct typical share (n, S): how many
    GPUs have that share idle and how much idle milli those GPUs hold."""
    idle = gpu_idle.astype(np.int32, copy=False)
    shares = typical.shares[0]
    fits = idle[:, None, :] >= shares[None, :, None]  # (n, S, G)
    return (idle.sum(axis=1, dtype=np.int64), np.count_nonzero(fits, axis=2),
            np.einsum("nsg,ng->ns", fits, idle, dtype=np.int64))


class RowCache:
    """Per-machine values derived from a machine's idle-GPU row, recomputed only for machines whose
    row differs from the one they were computed from (content-keyed: a hypothetical row passed
    in a context simply misses). ``compute(rows (n, G)) -> tuple of (n, ...) arrays``."""

    def __init__(self, compute):
        self.compute = compute
        self._rows: np.ndarray | None = None
        self._values: list[np.ndarray] = []

    def get(self, view: CellView, idx: np.ndarray, idle: np.ndarray) -> tuple[np.ndarray, ...]:
        if self._rows is None or self._rows.shape != view.gpu_idle.shape:
            self._rows = np.full(view.gpu_idle.shape, -1, dtype=view.gpu_idle.dtype)
            self._values = []
        stale = ~(self._rows[idx] == idle).all(axis=1)
        if stale.any():
            fresh = self.compute(idle[stale])
            if not self._values:
                self._values = [np.zeros((len(view),) + v.shape[1:], dtype=v.dtype) for v in fresh]
            rows = idx[stale]
            for store, value in zip(self._values, fresh):
                store[rows] = value
            self._rows[rows] = idle[stale]
        return tuple(store[idx] for store in self._values)


def frag_from_parts(total: np.ndarray, room: np.ndarray, usable: np.ndarray, cpu_left: np.ndarray,
                    access: np.ndarray, typical: TypicalPods) -> np.ndarray:
    """Fragmentation from :func:`gpu_parts` (any leading shape ``...``; ``room``/``usable`` ``(..., S)``,
    ``cpu_left``/``total`` ``(...)``). ``access`` is ``(..., T)`` bool, or already the per-shape
    weights of :meth:`TypicalPods.shape_weights` (float)."""
    weights = typical.shape_weights(access) if access.dtype == bool else access
    cpu, share, num = typical.shapes[0], typical.shapes[1], typical.shapes[2]
    fits = (room[..., share] >= num) & (cpu_left[..., None] >= cpu)
    return total * typical.p_sum - (np.where(fits, usable[..., share], 0) * weights).sum(axis=-1)


def node_frag(cpu_left: np.ndarray, gpu_idle: np.ndarray, access: np.ndarray, typical: TypicalPods) -> np.ndarray:
    """Fragmented GPU milli of each machine state (PROTOCOL §8).

    ``cpu_left`` (n,), ``gpu_idle`` (n, G) idle milli per GPU (0 for GPUs the
    machine does not have), ``access`` (n, T). For each typical task t: if it
    fits (GPU share > 0, model allowed, enough GPUs with its share idle, cpu
    left), only the GPUs too small for its share are fragments, else all idle
    GPU milli is. Returns the ``p``-weighted sum, (n,) float.
    """
    if not len(typical):
        return np.zeros(len(cpu_left))
    return frag_from_parts(*gpu_parts(gpu_idle, typical), cpu_left, access, typical)


def share_frag_after(cpu_left: np.ndarray, gpu_idle: np.ndarray, access: np.ndarray, typical: TypicalPods,
                     cpu: int, milli: int, parts: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fragmentation now (n,) and after a task of ``cpu`` and one GPU share ``milli`` goes on
    GPU i (n, G): only GPU i's contribution changes, so it is updated, not recomputed."""
    if not len(typical):
        return np.zeros(len(cpu_left)), np.zeros(gpu_idle.shape)
    idle = gpu_idle.astype(np.int32, copy=False)
    total, room, usable = parts if parts is not None else gpu_parts(idle, typical)
    shares = typical.shares[0]
    x = idle[:, :, None]  # (n, G, 1): the GPU that takes the task, before and after
    y = x - np.int32(milli)
    fit_x, fit_y = x >= shares, y >= shares  # (n, G, S)
    # Column 0: now; column 1 + i: after the task goes on GPU i. One evaluation for both.
    room_all = np.concatenate((room[:, None, :], room[:, None, :] - fit_x + fit_y), axis=1)
    usable_all = np.concatenate(
        (usable[:, None, :], usable[:, None, :] - np.where(fit_x, x, 0) + np.where(fit_y, y, 0)), axis=1)
    n, g = idle.shape
    total_all = np.empty((n, g + 1), dtype=np.int64)
    total_all[:, 0], total_all[:, 1:] = total, (total - milli)[:, None]
    cpu_all = np.empty((n, g + 1), dtype=np.int64)
    cpu_all[:, 0], cpu_all[:, 1:] = cpu_left, (cpu_left - cpu)[:, None]
    frag = frag_from_parts(total_all, room_all, usable_all, cpu_all, access[:, None, :], typical)
    now, after = frag[:, 0], frag[:, 1:]
    return now, after


def take_gpus(idle: np.ndarray, milli: int, count: int) -> np.ndarray:
    """Idle state after taking ``count`` GPUs with ``milli`` each, smallest idle first (stable).

    ``idle`` (n, G); rows without room keep their state."""
    key = np.where(idle >= milli, idle, np.iinfo(np.int32).max)
    chosen = np.argsort(key, axis=1, kind="stable")[:, :count]
    after = idle.astype(np.int64).copy()
    rows = np.arange(len(idle))[:, None]
    ok = np.take_along_axis(key, chosen, axis=1) <= GPU_MILLI_WHOLE
    after[rows, chosen] -= np.where(ok, milli, 0)
    return after


def sigmoid_score(delta: np.ndarray) -> np.ndarray:
    """``int(sigmoid(delta / 1000) * 100)`` as the artifact computes it."""
    return np.trunc(100.0 / (1.0 + np.exp(-delta / FRAG_SCALE)))


class FGDScore(Scorer):
    name = "fgd"

    def __init__(self, typical: TypicalPods | None = None):
        self.typical = typical or TypicalPods.empty()
        self._access: tuple[object, np.ndarray] | None = None
        self._parts = RowCache(lambda rows: gpu_parts(rows, self.typical))

    def parts(self, ctx: EvalContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`gpu_parts` of the context's machines, from the per-machine cache."""
        return self._parts.get(ctx.view, ctx.idx, ctx.gpu_idle)

    def access(self, view: CellView) -> np.ndarray:
        """Per machine, the popularity of each typical GPU shape it may serve, ``(M, shapes)``."""
        if self._access is None or self._access[0] is not view.lineage:
            self._access = (view.lineage, self.typical.shape_weights(access_table(view, self.typical)))
        return self._access[1]

    def share_scores(self, ctx: EvalContext) -> np.ndarray:
        """(n, G) integer scores of putting a shared-GPU task on each GPU; -1 where it does not fit."""
        req, idle = ctx.req, ctx.gpu_idle
        if not len(self.typical):
            return np.where(idle >= req.gpu_milli, 50.0, -1.0)
        now, after = share_frag_after(ctx.free[:, CPU], idle, self.access(ctx.view)[ctx.idx], self.typical,
                                      req.resources.cpu, req.gpu_milli, self.parts(ctx))
        return np.where(idle >= req.gpu_milli, sigmoid_score(now[:, None] - after), -1.0)

    def raw(self, ctx: EvalContext) -> np.ndarray:
        req = ctx.req
        if req.is_gpu_share:
            return self.share_scores(ctx).max(axis=1)
        return sigmoid_score(-self.frag_growth(ctx))

    def frag_growth(self, ctx: EvalContext) -> np.ndarray:
        """How much each machine's fragmentation grows with a CPU-only or whole-GPU task, (n,)."""
        req, typical = ctx.req, self.typical
        access = self.access(ctx.view)[ctx.idx]
        cpu_left = ctx.free[:, CPU]
        if not len(typical):
            return np.zeros(len(ctx))
        total, room, usable = self.parts(ctx)
        cpu_after = cpu_left - req.resources.cpu
        if not req.gpu:
            after = (total, room, usable)
        elif req.gpu_milli == GPU_MILLI_WHOLE:
            # k fully idle GPUs go: each had room for every share.
            k = req.gpu
            after = (total - k * GPU_MILLI_WHOLE, room - k, usable - k * GPU_MILLI_WHOLE)
        else:
            after = gpu_parts(take_gpus(ctx.gpu_idle, req.gpu_milli, req.gpu), typical)
        # Column 0 now, column 1 after: one evaluation for both.
        frag = frag_from_parts(np.stack((total, after[0]), axis=1), np.stack((room, after[1]), axis=1),
                               np.stack((usable, after[2]), axis=1), np.stack((cpu_left, cpu_after), axis=1),
                               access[:, None, :], typical)
        return frag[:, 1] - frag[:, 0]

    def score(self, ctx: EvalContext) -> np.ndarray:
        return self.raw(ctx) / 100.0


def fgd_select_gpus(scorer: FGDScore):
    """GPU choice at placement: a shared-GPU task takes FGD's best GPU (first among equals);
    whole GPUs go as in :func:`select_gpus_best`."""

    def select(view: CellView, machine: int, req: TaskRequest) -> tuple[int, ...]:
        if not req.is_gpu_share:
            return select_gpus_best(view, machine, req)
        room = view.gpu_idle[machine] >= req.gpu_milli
        if not room.any():
            raise ValueError(f"{view.names[machine]} has no room for {req.describe()}")
        scores = scorer.share_scores(EvalContext(view, req, np.array([machine])))[0]
        return (int(np.argmax(np.where(room, scores, -np.inf))),)

    return select
