"""corral's openb policy: FGD's fragmentation gradient, with ties broken by packing.

FGD scores ``int(sigmoid(-dF/1000) * 100)`` where dF is how much the
machine's fragmentation grows; the integer cut leaves many machines tied
(every dF in about [-40, 0] scores 50) and the artifact breaks those ties by
random node-name order. This scorer keeps FGD's integer score as the first
key and breaks ties towards the machine left with the least cpu and GPU
(the FGD paper's best-fit measure), so work collects on busy machines and
idle ones stay whole for large tasks.
"""

from __future__ import annotations

import numpy as np

from corral.model.resources import CPU, GPU
from corral.sched.context import EvalContext
from corral.sched.policy import Policy
from corral.sched.scorers.dot_product import MAX_SPEC_CPU, MAX_SPEC_GPU
from corral.sched.scorers.fgd import FGDScore, TypicalPods, fgd_select_gpus

PACK_WEIGHT = 0.01  # below one FGD step (0.01 after scaling), so packing only breaks ties


class FragLookahead(FGDScore):
    name = "fgd-lookahead"

    def __init__(self, typical: TypicalPods | None = None, pack_weight: float = PACK_WEIGHT):
        super().__init__(typical)
        self.pack_weight = pack_weight

    def score(self, ctx: EvalContext) -> np.ndarray:
        res = ctx.req.resources
        gpu_left = (ctx.free[:, GPU] - res.gpu_total_milli) / MAX_SPEC_GPU
        cpu_left = (ctx.free[:, CPU] - res.cpu) / MAX_SPEC_CPU
        return self.raw(ctx) / 100.0 - self.pack_weight * (0.5 * gpu_left + 0.5 * cpu_left) / 100.0


def lookahead_policy(typical: TypicalPods) -> Policy:
    scorer = FragLookahead(typical)
    return Policy("fgd-lookahead", [(scorer, 1.0)], select_gpus=fgd_select_gpus(scorer))
