"""corral's openb policy: FGD's fragmentation gradient plus a look-ahead over how many typical
tasks each machine could still take, with packing to break the remaining ties.

The score of a machine (or, for a shared-GPU task, of each of its GPUs) is

    FGD's integer score  -  24 * (look-ahead fragmentation growth) / 8000  -  tiny * (idle GPU left)

1. FGD's score ``int(sigmoid(-dF/1000) * 100)`` (``fgd.py``): dF is how much
   the machine's fragmentation grows (per typical task: "does one copy fit?").
2. *Look-ahead fragmentation* growth, worth 3 FGD points per 1000 milli-GPU:
   "how much of the machine's idle GPU could copies of each typical task
   fill?" -- copies limited by the GPUs (a GPU with idle share x holds
   ``x // share`` copies) *and by the machine's cpu* (``cpu_left // cpu``).
   Idle GPU the copies cannot fill is fragment. This sees what FGD misses: a
   GPU left at 60 after two 470 shares, a machine whose cpu admits two more
   tasks while eight GPUs sit idle (stranding), and a CPU-only task eating the
   cpu a machine's idle GPUs need. Weighted at FGD's scale it can overrule
   FGD's integer cut where the two disagree by little.
3. Packing: among what still ties, the machine left with the least idle GPU,
   so work collects on busy machines and idle ones stay whole (the artifact
   breaks FGD's ties at random instead).

A shared-GPU task is scored per GPU with keys 1-2 and takes its best GPU.

How it is computed (the policy's cost is one pass over the stale machines of a class):

- Both measures of a machine *now* do not depend on the task: they are kept per machine,
  keyed by the machine's cpu left and idle-GPU row, and recomputed only where those changed.
- Only machines where the task fits (resources and GPU room, the checkers' own tests) are
  scored; the others are filtered by the checkers anyway.
- Both measures *after* the placement are computed together from per-share parts (GPUs with
  a share idle, their idle milli, copies they hold) updated for what the task takes. For a
  shared-GPU task the GPUs of a machine with the same idle milli give the same after-state, so
  each distinct (machine, idle milli) pair is evaluated once.
- The GPU a shared-GPU task takes is remembered from its scoring, keyed by the machine's
  state, so placing it does not score the machine again.
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import CPU, GPU, GPU_MILLI_WHOLE
from corral.sched.cellview import CellView
from corral.sched.context import EvalContext
from corral.sched.gpus import select_gpus_best
from corral.sched.policy import Policy
from corral.sched.request import TaskRequest
from corral.sched.scorers.fgd import FGDScore, TypicalPods, gpu_parts, sigmoid_score, take_gpus

LOOKAHEAD_WEIGHT = 24.0  # x growth / 8000 milli: 3 FGD points per 1000 milli of look-ahead growth
PACK_WEIGHT = 1e-4  # x idle GPU left / 8000 milli
MAX_SPEC_GPU = 8000.0
NO_ROOM = -1e9
_PAIR = 4096  # (row, idle milli) pairs packed as row * _PAIR + milli


def copies_parts(gpu_idle: np.ndarray, typical: TypicalPods) -> tuple[np.ndarray, np.ndarray]:
    """Idle GPU milli (n,) and, per distinct typical share, how many copies of it the GPUs hold (n, S)."""
    idle = gpu_idle.astype(np.int64)
    shares = np.maximum(typical.shares[0].astype(np.int64), 1)
    return idle.sum(axis=1), (idle[:, None, :] // shares[None, :, None]).sum(axis=2)


def copies_frag(total: np.ndarray, copies: np.ndarray, cpu_left: np.ndarray, access: np.ndarray,
                typical: TypicalPods) -> np.ndarray:
    """Look-ahead fragmentation: idle GPU milli that copies of each typical task (as many as the GPUs,
    the GPU model and the cpu allow) could not fill, popularity-weighted. Leading shape ``...``;
    ``access`` as in :func:`~corral.sched.scorers.fgd.frag_from_parts`."""
    weights = typical.shape_weights(access) if access.dtype == bool else access
    cpu, share, num, milli = typical.shapes[:4]
    k = np.minimum(copies[..., share] // num, cpu_left[..., None] // np.maximum(cpu, 1))
    usable = np.minimum(k * milli * num, total[..., None])
    return total * typical.p_sum - (usable * weights).sum(axis=-1)


class _Shapes:
    """The typical GPU shapes as (1, J) rows, for broadcasting against (rows, J) state."""

    def __init__(self, typical: TypicalPods):
        cpu, share, num, milli, _ = typical.shapes
        self.share = share  # (J,) index into the distinct shares
        self.cpu = cpu[None, :]
        self.cpu_div = np.maximum(cpu, 1)[None, :]
        self.num = num[None, :]
        self.span = (milli * num)[None, :]  # GPU milli one copy takes
        self.shares = np.maximum(typical.shares[0].astype(np.int64), 1)  # (S,)
        self.copies_whole = GPU_MILLI_WHOLE // self.shares  # copies one idle GPU holds, per share
        self.p_sum = typical.p_sum


def _both_frags(s: _Shapes, total, room, usable, copies, cpu_left, w):
    """FGD's fragmentation and the look-ahead fragmentation of n states: per-share parts (n, S),
    ``total``/``cpu_left`` (n,), per-shape weights ``w`` (n, J) -> two (n,) arrays."""
    cpu = cpu_left[:, None]
    room_j, usable_j, copies_j = room[:, s.share], usable[:, s.share], copies[:, s.share]
    cpu_fits = cpu >= s.cpu
    fgd_used = np.where((room_j >= s.num) & cpu_fits, usable_j, 0)
    k = np.minimum(copies_j // s.num, cpu // s.cpu_div)
    la_used = np.minimum(k * s.span, total[:, None])
    base = total * s.p_sum
    return base - (fgd_used * w).sum(axis=1), base - (la_used * w).sum(axis=1)


class FragLookahead(FGDScore):
    name = "fgd-lookahead"

    def __init__(self, typical: TypicalPods | None = None):
        super().__init__(typical)
        self._s = _Shapes(self.typical) if len(self.typical) else None
        self._state_key: np.ndarray | None = None  # (M, 1 + G): cpu left, idle GPU row
        self._now: list[np.ndarray] = []  # total, room, usable, copies, fgd now, look-ahead now
        self._best_gpu: dict[TaskRequest, tuple[np.ndarray, np.ndarray]] = {}  # req -> (state keys, GPU)

    # ---- per-machine state, independent of the task ----------------------------------------

    def _machine_now(self, view: CellView, idx: np.ndarray, cpu_left: np.ndarray, idle: np.ndarray):
        """Per-share parts and both fragmentations now of machines ``idx`` (cached per machine state)."""
        key = np.empty((len(idx), idle.shape[1] + 1), dtype=np.int64)
        key[:, 0], key[:, 1:] = cpu_left, idle
        if self._state_key is None or self._state_key.shape != (len(view), key.shape[1]):
            self._state_key = np.full((len(view), key.shape[1]), -1, dtype=np.int64)
            self._now = []
        stale = ~(self._state_key[idx] == key).all(axis=1)
        if stale.any():
            rows = idx[stale]
            total, room, usable = gpu_parts(idle[stale], self.typical)
            copies = (idle[stale].astype(np.int64)[:, None, :] // self._s.shares[None, :, None]).sum(axis=2)
            fgd, la = _both_frags(self._s, total, room, usable, copies, cpu_left[stale], self.access(view)[rows])
            fresh = (total, room, usable, copies, fgd, la)
            if not self._now:
                self._now = [np.zeros((len(view),) + v.shape[1:], dtype=v.dtype) for v in fresh]
            for store, value in zip(self._now, fresh):
                store[rows] = value
            self._state_key[rows] = key[stale]
        return [store[idx] for store in self._now]

    # ---- scoring -------------------------------------------------------------------------------

    def _fits(self, ctx: EvalContext) -> np.ndarray:
        """Where the task fits: the ResourcesFit and GpuFit checkers' own tests."""
        req = ctx.req
        ok = np.logical_and.reduce(ctx.free >= req.vector, axis=1)
        if req.gpu:
            ok &= (ctx.gpu_idle >= req.gpu_milli).sum(axis=1) >= req.gpu
        return ok

    def _keys(self, ctx: EvalContext, rows: np.ndarray):
        """Keys 1-2 of the machines at positions ``rows`` of the context: (len(rows),) best key and,
        for a shared-GPU task, the GPU it is reached on."""
        req, s = ctx.req, self._s
        idx, cpu_left, idle = ctx.idx[rows], ctx.free[rows, CPU], ctx.gpu_idle[rows]
        total, room, usable, copies, fgd_now, la_now = self._machine_now(ctx.view, idx, cpu_left, idle)
        w = self.access(ctx.view)[idx]
        cpu_after = cpu_left - req.resources.cpu
        milli = req.gpu_milli
        if req.is_gpu_share:
            cand = idle >= milli
            packed = (np.arange(len(rows), dtype=np.int64)[:, None] * _PAIR + idle)[cand]
            pairs, inverse = np.unique(packed, return_inverse=True)
            pm, x = pairs // _PAIR, pairs % _PAIR
            y = x - milli
            fx, fy = x[:, None] >= s.shares, y[:, None] >= s.shares
            room_a = room[pm] - fx + fy
            usable_a = usable[pm] - np.where(fx, x[:, None], 0) + np.where(fy, y[:, None], 0)
            copies_a = copies[pm] - x[:, None] // s.shares + y[:, None] // s.shares
            fgd_a, la_a = _both_frags(s, total[pm] - milli, room_a, usable_a, copies_a, cpu_after[pm], w[pm])
            pair_keys = sigmoid_score(fgd_now[pm] - fgd_a) - LOOKAHEAD_WEIGHT * (la_a - la_now[pm]) / MAX_SPEC_GPU
            gpu_keys = np.full(idle.shape, -np.inf)
            gpu_keys[cand] = pair_keys[inverse.reshape(-1)]
            best = np.argmax(gpu_keys, axis=1)
            return gpu_keys[np.arange(len(rows)), best], best
        if req.gpu and milli == GPU_MILLI_WHOLE:
            # k fully idle GPUs go: each had room for every share and held 1000 // share copies of it.
            k = req.gpu
            after = (total - k * GPU_MILLI_WHOLE, room - k, usable - k * GPU_MILLI_WHOLE, copies - k * s.copies_whole)
        elif req.gpu:
            taken = take_gpus(idle, milli, req.gpu)
            t_total, t_room, t_usable = gpu_parts(taken, self.typical)
            after = (t_total, t_room, t_usable, (taken[:, None, :] // s.shares[None, :, None]).sum(axis=2))
        else:
            after = (total, room, usable, copies)
        fgd_a, la_a = _both_frags(s, *after, cpu_after, w)
        return sigmoid_score(fgd_now - fgd_a) - LOOKAHEAD_WEIGHT * (la_a - la_now) / MAX_SPEC_GPU, None

    def score(self, ctx: EvalContext) -> np.ndarray:
        req = ctx.req
        gpu_left = (ctx.free[:, GPU] - req.resources.gpu_total_milli) / MAX_SPEC_GPU
        key = np.full(len(ctx), NO_ROOM)
        if self._s is None:
            key[:] = 50.0
        else:
            rows = np.flatnonzero(self._fits(ctx))
            if len(rows):
                key[rows], best = self._keys(ctx, rows)
                if best is not None:
                    self._remember(ctx, rows, best)
        return (key - PACK_WEIGHT * gpu_left) / 100.0

    # ---- GPU choice ------------------------------------------------------------------------------

    def _remember(self, ctx: EvalContext, rows: np.ndarray, best: np.ndarray) -> None:
        memo = self._best_gpu.get(ctx.req)
        view = ctx.view
        width = ctx.gpu_idle.shape[1] + 1
        if memo is None or memo[0].shape != (len(view), width):
            memo = self._best_gpu[ctx.req] = (np.full((len(view), width), -1, dtype=np.int64),
                                              np.zeros(len(view), dtype=np.int64))
        keys, gpus = memo
        at = ctx.idx[rows]
        keys[at, 0], keys[at, 1:] = ctx.free[rows, CPU], ctx.gpu_idle[rows]
        gpus[at] = best

    def select_gpus(self, view: CellView, machine: int, req: TaskRequest) -> tuple[int, ...]:
        """A shared-GPU task takes the GPU with the best keys 1-2 (first among equals); whole GPUs
        as :func:`select_gpus_best`."""
        if not req.is_gpu_share:
            return select_gpus_best(view, machine, req)
        idle = view.gpu_idle[machine]
        if not (idle >= req.gpu_milli).any():
            raise ValueError(f"{view.names[machine]} has no room for {req.describe()}")
        memo = self._best_gpu.get(req)
        if memo is not None and memo[0].shape[1] == len(idle) + 1:
            key = memo[0][machine]
            if key[0] == view.free[machine, CPU] and (key[1:] == idle).all():
                return (int(memo[1][machine]),)
        if self._s is None:
            return (int(np.argmax(idle >= req.gpu_milli)),)
        ctx = EvalContext(view, req, np.array([machine]))
        return (int(self._keys(ctx, np.array([0]))[1][0]),)

    # ---- the separate terms, for tests and diagnosis ---------------------------------------------

    def lookahead_growth(self, ctx: EvalContext) -> np.ndarray:
        """Growth of look-ahead fragmentation for a CPU-only or whole-GPU task, (n, 1)."""
        total, copies = copies_parts(ctx.gpu_idle, self.typical)
        access = self.access(ctx.view)[ctx.idx]
        cpu_left = ctx.free[:, CPU]
        req = ctx.req
        total_a, copies_a = total, copies
        if req.gpu:
            total_a, copies_a = copies_parts(take_gpus(ctx.gpu_idle, req.gpu_milli, req.gpu), self.typical)
        now = copies_frag(total, copies, cpu_left, access, self.typical)
        after = copies_frag(total_a, copies_a, cpu_left - req.resources.cpu, access, self.typical)
        return (after - now)[:, None]


def lookahead_policy(typical: TypicalPods) -> Policy:
    scorer = FragLookahead(typical)
    return Policy("fgd-lookahead", [(scorer, 1.0)], select_gpus=scorer.select_gpus)
