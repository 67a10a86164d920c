"""corral's openb policy: FGD's fragmentation gradient plus a look-ahead over how many typical
tasks each machine could still take, a reserve for rare large shapes, and packing to break the
remaining ties.

The score of a machine (or, for a shared-GPU task, of each of its GPUs) is

    FGD's integer score  -  24 * (look-ahead fragmentation growth) / 8000  -  reserve  -  tiny * (idle GPU left)

1. FGD's score ``int(sigmoid(-dF/1000) * 100)`` (``fgd.py``): dF is how much
   the machine's fragmentation grows (per typical task: "does one copy fit?"),
   where "fits" also asks for the mean memory of the workload's pods of that
   shape (FGD itself looks at cpu and GPUs only).
2. *Look-ahead fragmentation* growth, worth 3 FGD points per 1000 milli-GPU:
   "how much of the machine's idle GPU could copies of each typical task
   fill?" -- copies limited by the GPUs (a GPU with idle share x holds
   ``x // share`` copies), *by the machine's cpu* (``cpu_left // cpu``) and
   *by its memory* (``memory_left // memory``, the mean memory of the
   workload's pods of that shape). Idle GPU the copies cannot fill is
   fragment. This sees what FGD misses: a GPU left at 60 after two 470
   shares, a machine whose cpu or memory admits two more tasks while eight
   GPUs sit idle (stranding), and a CPU-only task eating the cpu a machine's
   idle GPUs need. Weighted at FGD's scale it can overrule FGD's integer cut
   where the two disagree by little.
3. *Reserve*, in points, paid when the placement leaves a machine unable to
   host a shape it could host before:
   - rare GPU shapes (not typical) that few machines can host for their
     number, e.g. 120-core 8-GPU tasks that only the 39 machines with 128
     cores take: ``min(1, pods / able machines) * GPU milli * 3 / 1000``
     (groups with fewer than 0.1 pods per able machine are ignored);
   - the largest common CPU-only shape (>= 1 % of the pods, e.g. 32 cores),
     0.25 points paid by CPU-only tasks only, so small CPU-only tasks fill
     machines that can no longer take it and keep its holes.
4. Packing: among what still ties, the machine left with the least idle GPU,
   so work collects on busy machines and idle ones stay whole (the artifact
   breaks FGD's ties at random instead).

A shared-GPU task is scored per GPU with keys 1-3 and takes its best GPU.

How it is computed (the policy's cost is one pass over the stale machines of a class):

- Both measures of a machine *now* do not depend on the task: they are kept per machine,
  keyed by the machine's cpu and memory left and idle-GPU row, and recomputed only where
  those changed.
- Only machines where the task fits (resources and GPU room, the checkers' own tests) are
  scored; the others are filtered by the checkers anyway.
- Both measures *after* the placement are computed together from per-shape parts (GPUs with
  the shape's share idle, their idle milli, copies of the share they hold) updated for what
  the task takes. For a shared-GPU task the GPUs of a machine with the same idle milli give
  the same after-state, so each distinct (machine, idle milli) pair is evaluated once.
- The GPU a shared-GPU task takes is remembered from its scoring, keyed by the machine's
  state, so placing it does not score the machine again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from corral.model.resources import CPU, GPU, GPU_MILLI_WHOLE, MEMORY
from corral.sched.cellview import CellView
from corral.sched.context import EvalContext
from corral.sched.gpus import select_gpus_best
from corral.sched.policy import Policy
from corral.sched.request import TaskRequest
from corral.sched.scorers.fgd import FGDScore, TypicalPods, sigmoid_score, take_gpus

LOOKAHEAD_WEIGHT = 24.0  # x growth / 8000 milli: 3 FGD points per 1000 milli of look-ahead growth
PACK_WEIGHT = 1e-4  # x idle GPU left / 8000 milli
MAX_SPEC_GPU = 8000.0
NO_ROOM = -1e9
RESERVE_WEIGHT = 1.0  # x pressure x GPU milli of a rare shape / 1000 x 3 points, when a machine stops fitting it
RESERVE_MIN = 0.1  # rare shapes whose pods per able machine are fewer are ignored
CPU_RESERVE_WEIGHT = 0.25  # points a CPU-only task pays when a machine stops fitting the largest common CPU-only task
CPU_RESERVE_MIN_SHARE = 0.01  # CPU-only shapes rarer than this share of the pods are not reserved for
MEMORY_LOOKAHEAD = True  # copies are limited by the machine's memory too (with each shape's mean memory)
FGD_MEMORY = True  # key 1's "one copy fits" asks for the shape's mean memory too
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


@dataclass(frozen=True)
class RareShapes:
    """Pod shapes outside the typical ones whose able machines are few for their number: per shape
    ``(cpu, share, GPUs, models)`` and how many pods of it the workload has."""

    keys: tuple[tuple[int, int, int, tuple[str, ...]], ...] = ()
    counts: tuple[int, ...] = ()

    @classmethod
    def from_pods(cls, keys, typical: TypicalPods) -> "RareShapes":
        """From the workload's pod keys ``(cpu, share, GPUs, "A|B")`` (CPU-only pods ignored)."""
        typical_keys = set(zip(typical.cpu.tolist(), typical.milli.tolist(), typical.num.tolist(), typical.models))
        counts = Counter((int(c), int(m), int(g), tuple(x for x in models.split("|") if x)) for c, m, g, models in keys)
        rare = [(k, n) for k, n in sorted(counts.items()) if k[2] > 0 and k not in typical_keys]
        total = sum(counts.values())
        cpu_only = [(k, n) for k, n in counts.items() if k[2] == 0 and n >= CPU_RESERVE_MIN_SHARE * total]
        if cpu_only:
            rare.append(max(cpu_only))  # the largest common CPU-only shape
        return cls(tuple(k for k, _ in rare), tuple(n for _, n in rare))

    def weights(self, view: CellView) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Groups of rare shapes with the same able machines, GPU count and share, as their hardest
        member (most cpu): its cpu (R,), share (R,), GPUs (R,), and per machine the group's
        weight (M, R): pods per able machine (capped at 1) x GPU milli of the shape, 0 where unable."""
        names: dict[int, str] = {code: name for name, code in view.gpu_models.codes.items()}
        model_of = [names.get(int(c)) for c in view.gpu_model]
        groups: dict[tuple, list] = {}
        for (cpu, milli, num, models), n in zip(self.keys, self.counts):
            able = (view.capacity[:, CPU] >= cpu) & (view.gpu_count >= num)
            if models:
                able &= np.array([m in models for m in model_of])
            if not able.any():
                continue
            g = groups.setdefault((able.tobytes(), num, milli), [able, num, 0, 0, 0])
            g[2], g[3], g[4] = max(g[2], cpu), max(g[3], milli), g[4] + n
        chosen = [g for g in groups.values() if g[1] == 0 or g[4] / g[0].sum() >= RESERVE_MIN]
        weight = np.zeros((len(view), len(chosen)))
        for j, (able, num, cpu, milli, n) in enumerate(chosen):
            # in points: GPU shapes 3 per 1000 milli (the look-ahead's scale) x pressure, CPU-only flat
            value = RESERVE_WEIGHT * milli * num * 3.0 / 1000.0 if num else CPU_RESERVE_WEIGHT
            weight[able, j] = (min(1.0, n / able.sum()) if num else 1.0) * value
        return (np.array([g[2] for g in chosen], dtype=np.int64), np.array([g[3] for g in chosen], dtype=np.int64),
                np.array([g[1] for g in chosen], dtype=np.int64), weight)


def shape_memory(pods) -> dict[tuple[int, int, int], int]:
    """Mean memory (bytes) of the pods of each shape ``(cpu, share, GPUs)``, from ``(key, memory)``
    pairs with keys ``(cpu, share, GPUs, "A|B")``."""
    total: Counter = Counter()
    count: Counter = Counter()
    for (cpu, milli, num, _), memory in pods:
        total[cpu, milli, num] += memory
        count[cpu, milli, num] += 1
    return {k: total[k] // count[k] for k in total}


class _Shapes:
    """The typical GPU shapes as (1, J) rows, for broadcasting against (rows, J) state."""

    def __init__(self, typical: TypicalPods, memory: dict[tuple[int, int, int], int] | None = None):
        cpu, share, num, milli, _ = typical.shapes
        mem = np.array([(memory or {}).get((int(c), int(m), int(g)), 0) for c, m, g in zip(cpu, milli, num)],
                       dtype=np.int64)
        self.use_memory = MEMORY_LOOKAHEAD and bool(mem.any())
        self.fgd_memory = FGD_MEMORY and bool(mem.any())
        self.mem = mem[None, :]
        self.mem_div = np.maximum(mem, 1)[None, :]
        self.milli = np.maximum(milli, 1)[None, :]  # per-GPU share of each shape
        self.cpu = cpu[None, :]
        self.cpu_div = np.maximum(cpu, 1)[None, :]
        self.num = num[None, :]
        self.span = (milli * num)[None, :]  # GPU milli one copy takes
        self.copies_whole = GPU_MILLI_WHOLE // self.milli  # copies of each shape's share one idle GPU holds
        self.p_sum = typical.p_sum


def _parts(s: _Shapes, idle: np.ndarray):
    """Per machine (rows of ``idle``, (n, G)): idle GPU milli (n,) and per typical shape (n, J) how many
    GPUs have its share idle, how much idle milli those GPUs hold and how many copies of the share
    the GPUs hold."""
    idle = idle.astype(np.int64)[:, None, :]
    fits = idle >= s.milli[:, :, None]  # (n, J, G)
    return (idle[:, 0, :].sum(axis=1), fits.sum(axis=2), (fits * idle).sum(axis=2),
            (idle // s.milli[:, :, None]).sum(axis=2))


def _both_frags(s: _Shapes, total, room, usable, copies, cpu_left, mem_left, w):
    """FGD's fragmentation and the look-ahead fragmentation of n states from per-shape parts
    (n, J), ``total``/``cpu_left``/``mem_left`` (n,) and per-shape weights ``w`` (n, J): two (n,)."""
    cpu = cpu_left[:, None]
    fits = (room >= s.num) & (cpu >= s.cpu)
    if s.fgd_memory:
        fits &= mem_left[:, None] >= s.mem
    fgd_used = np.where(fits, usable, 0)
    k = np.minimum(copies // s.num, cpu // s.cpu_div)
    if s.use_memory:
        k = np.minimum(k, mem_left[:, None] // s.mem_div)
    la_used = np.minimum(k * s.span, total[:, None])
    base = total * s.p_sum
    return base - np.einsum("ij,ij->i", fgd_used, w), base - np.einsum("ij,ij->i", la_used, w)


class FragLookahead(FGDScore):
    name = "fgd-lookahead"

    def __init__(self, typical: TypicalPods | None = None, rare: RareShapes | None = None,
                 memory: dict[tuple[int, int, int], int] | None = None):
        super().__init__(typical)
        self.rare = rare or RareShapes()
        self._rare: tuple[object, tuple] | None = None
        self._s = _Shapes(self.typical, memory) if len(self.typical) else None
        self._state_key: np.ndarray | None = None  # (M, 2 + G): cpu left, memory left, idle GPU row
        self._now: list[np.ndarray] = []  # total, room, usable, copies, fgd now, look-ahead now
        self._best_gpu: dict[TaskRequest, tuple[np.ndarray, np.ndarray]] = {}  # req -> (state keys, GPU)

    # ---- per-machine state, independent of the task ----------------------------------------

    def _machine_now(self, view: CellView, idx: np.ndarray, cpu_left: np.ndarray, mem_left: np.ndarray,
                     idle: np.ndarray):
        """Per-share parts and both fragmentations now of machines ``idx`` (cached per machine state)."""
        key = np.empty((len(idx), idle.shape[1] + 2), dtype=np.int64)
        key[:, 0], key[:, 1], key[:, 2:] = cpu_left, mem_left, idle
        if self._state_key is None or self._state_key.shape != (len(view), key.shape[1]):
            self._state_key = np.full((len(view), key.shape[1]), -1, dtype=np.int64)
            self._now = []
        stale = ~(self._state_key[idx] == key).all(axis=1)
        if stale.any():
            rows = idx[stale]
            total, room, usable, copies = _parts(self._s, idle[stale])
            fgd, la = _both_frags(self._s, total, room, usable, copies, cpu_left[stale], mem_left[stale],
                                  self.access(view)[rows])
            fresh = (total, room, usable, copies, fgd, la)
            if not self._now:
                self._now = [np.zeros((len(view),) + v.shape[1:], dtype=v.dtype) for v in fresh]
            for store, value in zip(self._now, fresh):
                store[rows] = value
            self._state_key[rows] = key[stale]
        return [store[idx] for store in self._now]

    def rare_weights(self, view: CellView, gpu_task: bool):
        """:meth:`RareShapes.weights` of this view (computed once per lineage), None if all zero; for
        a GPU task only the GPU shapes (the CPU-only reserve is paid by CPU-only tasks only)."""
        if self._rare is None or self._rare[0] is not view.lineage:
            cpu_r, milli_r, num_r, weight = self.rare.weights(view)
            everything = (cpu_r, milli_r, num_r, weight) if weight.any() else None
            g = num_r > 0
            gpu_only = (cpu_r[g], milli_r[g], num_r[g], weight[:, g]) if weight[:, g].any() else None
            self._rare = (view.lineage, (everything, gpu_only))
        return self._rare[1][1 if gpu_task else 0]

    def _reserve(self, view: CellView, idx: np.ndarray, cpu_left: np.ndarray, idle: np.ndarray, req: TaskRequest):
        """For the rare shapes: GPUs with each one's share idle (n, R), the reserve each machine
        would lose if it stopped fitting each one (n, R), and the shapes; None if nothing to lose."""
        rare = self.rare_weights(view, bool(req.gpu))
        if rare is None:
            return None
        cpu_r, milli_r, num_r, weight = rare
        counts = (idle[:, :, None] >= milli_r).sum(axis=1)  # (n, R) GPUs with the shape's share idle
        fits_now = (cpu_left[:, None] >= cpu_r) & (counts >= num_r)
        return counts, weight[idx] * fits_now, cpu_r, milli_r, num_r

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
        idx, cpu_left, mem_left, idle = ctx.idx[rows], ctx.free[rows, CPU], ctx.free[rows, MEMORY], ctx.gpu_idle[rows]
        total, room, usable, copies, fgd_now, la_now = self._machine_now(ctx.view, idx, cpu_left, mem_left, idle)
        mem_after = mem_left - req.resources.memory
        w = self.access(ctx.view)[idx]
        cpu_after = cpu_left - req.resources.cpu
        milli = req.gpu_milli
        if req.is_gpu_share:
            cand = idle >= milli
            packed = (np.arange(len(rows), dtype=np.int64)[:, None] * _PAIR + idle)[cand]
            pairs, inverse = np.unique(packed, return_inverse=True)
            pm, x = pairs // _PAIR, pairs % _PAIR
            y = x - milli
            x, y = x[:, None], y[:, None]
            fx, fy = x >= s.milli, y >= s.milli
            room_a = room[pm] - fx + fy
            usable_a = usable[pm] - fx * x + fy * y
            copies_a = copies[pm] - x // s.milli + y // s.milli
            x, y = x[:, 0], y[:, 0]
            fgd_a, la_a = _both_frags(s, total[pm] - milli, room_a, usable_a, copies_a, cpu_after[pm], mem_after[pm],
                                      w[pm])
            pair_keys = sigmoid_score(fgd_now[pm] - fgd_a) - LOOKAHEAD_WEIGHT * (la_a - la_now[pm]) / MAX_SPEC_GPU
            reserve = self._reserve(ctx.view, idx, cpu_left, idle, req)
            if reserve is not None:
                counts, rw, cpu_r, milli_r, num_r = reserve
                counts_a = counts[pm] - (x[:, None] >= milli_r) + (y[:, None] >= milli_r)
                lost = ~((cpu_after[pm][:, None] >= cpu_r) & (counts_a >= num_r))
                pair_keys = pair_keys - (rw[pm] * lost).sum(axis=1)
            gpu_keys = np.full(idle.shape, -np.inf)
            gpu_keys[cand] = pair_keys[inverse.reshape(-1)]
            best = np.argmax(gpu_keys, axis=1)
            return gpu_keys[np.arange(len(rows)), best], best
        reserve = self._reserve(ctx.view, idx, cpu_left, idle, req)
        taken = None
        if req.gpu and milli == GPU_MILLI_WHOLE:
            # k fully idle GPUs go: each had room for every share and held 1000 // share copies of it.
            k = req.gpu
            after = (total - k * GPU_MILLI_WHOLE, room - k, usable - k * GPU_MILLI_WHOLE, copies - k * s.copies_whole)
        elif req.gpu:
            taken = take_gpus(idle, milli, req.gpu)
            after = _parts(s, taken)
        else:
            after = (total, room, usable, copies)
        fgd_a, la_a = _both_frags(s, *after, cpu_after, mem_after, w)
        key = sigmoid_score(fgd_now - fgd_a) - LOOKAHEAD_WEIGHT * (la_a - la_now) / MAX_SPEC_GPU
        if reserve is not None:
            counts, rw, cpu_r, milli_r, num_r = reserve
            if taken is not None:
                counts_a = (taken[:, :, None] >= milli_r).sum(axis=1)
            else:
                counts_a = counts - req.gpu  # whole GPUs count for every share; CPU-only: none go
            lost = ~((cpu_after[:, None] >= cpu_r) & (counts_a >= num_r))
            key = key - (rw * lost).sum(axis=1)
        return key, None

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


def lookahead_policy(typical: TypicalPods, rare: RareShapes | None = None,
                     memory: dict[tuple[int, int, int], int] | None = None) -> Policy:
    scorer = FragLookahead(typical, rare, memory)
    return Policy("fgd-lookahead", [(scorer, 1.0)], select_gpus=scorer.select_gpus)
