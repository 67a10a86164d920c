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
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import CPU, GPU, GPU_MILLI_WHOLE
from corral.sched.context import EvalContext
from corral.sched.policy import Policy
from corral.sched.scorers.fgd import FGDScore, RowCache, TypicalPods, fgd_select_gpus, sigmoid_score, take_gpus

LOOKAHEAD_WEIGHT = 24.0  # x growth / 8000 milli: 3 FGD points per 1000 milli of look-ahead growth
PACK_WEIGHT = 1e-4  # x idle GPU left / 8000 milli
MAX_SPEC_GPU = 8000.0
NO_ROOM = -1e9


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


class FragLookahead(FGDScore):
    name = "fgd-lookahead"

    def __init__(self, typical: TypicalPods | None = None):
        super().__init__(typical)
        self._copies = RowCache(lambda rows: copies_parts(rows, self.typical))

    def lookahead_growth(self, ctx: EvalContext) -> np.ndarray:
        """Growth of look-ahead fragmentation: (n, G) per GPU for a shared task, else (n, 1)."""
        req, typical = ctx.req, self.typical
        if not len(typical):
            return np.zeros((len(ctx), ctx.gpu_idle.shape[1] if req.is_gpu_share else 1))
        access = self.access(ctx.view)[ctx.idx]
        cpu_left = ctx.free[:, CPU]
        idle = ctx.gpu_idle.astype(np.int64)
        total, copies = self._copies.get(ctx.view, ctx.idx, ctx.gpu_idle)
        cpu_after = cpu_left - req.resources.cpu
        n = len(ctx)
        if req.is_gpu_share:
            # Column 0: now; column 1 + i: after the task goes on GPU i.
            shares = np.maximum(typical.shares[0].astype(np.int64), 1)
            x = idle[:, :, None]
            y = np.maximum(x - req.gpu_milli, 0)
            copies_all = np.concatenate((copies[:, None, :], copies[:, None, :] - x // shares + y // shares), axis=1)
            g = idle.shape[1]
            total_all = np.empty((n, g + 1), dtype=np.int64)
            total_all[:, 0], total_all[:, 1:] = total, (total - req.gpu_milli)[:, None]
            cpu_all = np.empty((n, g + 1), dtype=np.int64)
            cpu_all[:, 0], cpu_all[:, 1:] = cpu_left, cpu_after[:, None]
            frag = copies_frag(total_all, copies_all, cpu_all, access[:, None, :], typical)
            return frag[:, 1:] - frag[:, :1]
        if req.gpu and req.gpu_milli == GPU_MILLI_WHOLE:
            # k fully idle GPUs go, each had room for 1000 // share copies of every share.
            k = req.gpu
            shares = np.maximum(typical.shares[0].astype(np.int64), 1)
            total_after, copies_after = total - k * GPU_MILLI_WHOLE, copies - k * (GPU_MILLI_WHOLE // shares)
        elif req.gpu:
            total_after, copies_after = copies_parts(take_gpus(idle, req.gpu_milli, req.gpu), typical)
        else:
            total_after, copies_after = total, copies
        frag = copies_frag(np.stack((total, total_after), axis=1), np.stack((copies, copies_after), axis=1),
                           np.stack((cpu_left, cpu_after), axis=1), access[:, None, :], typical)
        return frag[:, 1:] - frag[:, :1]

    def keys(self, ctx: EvalContext) -> np.ndarray:
        """Keys 1 and 2 combined, per GPU (n, G) for a shared task, else (n, 1); NO_ROOM where it does not fit."""
        req = ctx.req
        if req.is_gpu_share:
            fgd = self.share_scores(ctx)
            fits = fgd >= 0
        else:
            fgd = sigmoid_score(-self.frag_growth(ctx))[:, None]
            fits = np.ones(fgd.shape, dtype=bool)
        key = fgd - LOOKAHEAD_WEIGHT * self.lookahead_growth(ctx) / MAX_SPEC_GPU
        return np.where(fits, key, NO_ROOM)

    def score(self, ctx: EvalContext) -> np.ndarray:
        gpu_left = (ctx.free[:, GPU] - ctx.req.resources.gpu_total_milli) / MAX_SPEC_GPU
        return (self.keys(ctx).max(axis=1) - PACK_WEIGHT * gpu_left) / 100.0


class _LookaheadGpus:
    """A shared-GPU task goes to the GPU with the best keys 1-2 (first among equals)."""

    def __init__(self, scorer: FragLookahead):
        self.scorer = scorer

    def share_scores(self, ctx: EvalContext) -> np.ndarray:
        return self.scorer.keys(ctx)


def lookahead_policy(typical: TypicalPods) -> Policy:
    scorer = FragLookahead(typical)
    return Policy("fgd-lookahead", [(scorer, 1.0)], select_gpus=fgd_select_gpus(_LookaheadGpus(scorer)))
