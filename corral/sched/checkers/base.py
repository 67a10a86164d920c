"""The checker interface: a per-machine feasibility predicate, vectorised over machines."""

from __future__ import annotations

from collections import Counter

import numpy as np

from corral.sched.context import EvalContext
from corral.sched.request import TaskRequest


class Checker:
    """Filters machines a task cannot go to.

    ``check`` returns a boolean mask over ``ctx.idx``; ``reasons`` says, for the
    machines a check rejected, why, in words a user can act on (counted per
    reason). ``machine_local`` is False when the answer depends on other
    machines too (failure-domain limits), so it cannot be cached per machine.
    ``resources_only`` is True when the answer depends only on the machine's
    attributes and the free resources in the context, so it can be asked of a
    hypothetical machine (an empty one, or one after evictions). ``exhausts`` is
    True when a rejection means "not enough free now" rather than "never here".
    """

    name: str = "checker"
    machine_local: bool = True
    resources_only: bool = True
    exhausts: bool = False  # rejects for lack of free resources (Nomad's "exhausted"), not a filter

    def applies(self, req: TaskRequest) -> bool:
        return True

    def check(self, ctx: EvalContext) -> np.ndarray:
        raise NotImplementedError

    def reasons(self, ctx: EvalContext, rejected: np.ndarray) -> Counter:
        return Counter({self.name: int(rejected.sum())})
