"""Why a task was not placed, in the spirit of Nomad's AllocMetric.

The record counts the machines evaluated, those filtered by each check (the
first check that rejected a machine is its reason; for resources, the first
dimension that ran short), and what preemption found. ``summary`` renders it
as one sentence:
``0/10000 machines are available: 7421 insufficient memory, 2579 constraint rack!=r7.``
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from corral.sched.context import EvalContext


@dataclass
class Explanation:
    machines: int
    evaluated: int
    filtered: Counter = field(default_factory=Counter)
    preemption: str = ""
    top_scores: list[tuple[str, float]] = field(default_factory=list)

    @property
    def available(self) -> int:
        return self.evaluated - sum(self.filtered.values())

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.filtered.items(), key=lambda kv: (-kv[1], kv[0])))
        sentence = f"{self.available}/{self.machines} machines are available"
        sentence += f": {reasons}." if reasons else "."
        if self.preemption:
            sentence += f" {self.preemption}."
        return sentence

    def to_dict(self) -> dict:
        return {
            "machines": self.machines,
            "evaluated": self.evaluated,
            "filtered": dict(self.filtered),
            "preemption": self.preemption,
            "top_scores": self.top_scores,
            "summary": self.summary(),
        }


def explain(policy, ctx: EvalContext) -> Explanation:
    """Run every check over ``ctx``'s machines and attribute each rejection to the first check."""
    parts = policy.parts(ctx.req)
    left = np.ones(len(ctx), dtype=bool)
    filtered: Counter = Counter()
    for checker in parts.local_checkers + parts.other_checkers:
        rejected = left & ~checker.check(ctx)
        if rejected.any():
            filtered.update(checker.reasons(ctx, rejected))
            left &= ~rejected
    return Explanation(machines=len(ctx.view), evaluated=len(ctx), filtered=+filtered)
