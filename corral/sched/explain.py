"""Why a task was not placed, in the spirit of Nomad's AllocMetric.

The record counts the machines evaluated, those *filtered* (they can never
hold the task: constraints, GPU model, ports, domain limits) and those
*exhausted* (not enough free now: per resource, the first dimension that ran
short). The first check that rejects a machine is its reason. It also says
what preemption found. Scores belong to placements (``Placement.score``): a
task that is not placed had no feasible machine to score. ``summary``
renders the record as one sentence:
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
    exhausted: Counter = field(default_factory=Counter)
    preemption: str = ""
    gang: str = ""  # a gang's sentence, said first (corral/sched/gang.py)
    held: str = ""  # machines a waiting gang holds that this task may not take (gang.py)

    @property
    def available(self) -> int:
        return self.evaluated - sum(self.filtered.values()) - sum(self.exhausted.values())

    def summary(self) -> str:
        counts = self.filtered + self.exhausted
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        sentence = f"{self.available}/{self.machines} machines are available"
        sentence += f": {reasons}." if reasons else "."
        if self.held:
            sentence += f" {self.held}."
        if self.preemption:
            sentence += f" {self.preemption}."
        if self.gang:
            sentence = f"{self.gang}. One task alone: {sentence}"
        return sentence

    def to_dict(self) -> dict:
        return {
            "machines": self.machines,
            "evaluated": self.evaluated,
            "filtered": dict(self.filtered),
            "exhausted": dict(self.exhausted),
            "preemption": self.preemption,
            **({"gang": self.gang} if self.gang else {}),
            **({"held": self.held} if self.held else {}),
            "summary": self.summary(),
        }


def explain(policy, ctx: EvalContext) -> Explanation:
    """Run every check over ``ctx``'s machines and attribute each rejection to the first check."""
    parts = policy.parts(ctx.req)
    left = np.ones(len(ctx), dtype=bool)
    explanation = Explanation(machines=len(ctx.view), evaluated=len(ctx))
    for checker in parts.local_checkers + parts.other_checkers:
        rejected = left & ~checker.check(ctx)
        if rejected.any():
            counts = explanation.exhausted if checker.exhausts else explanation.filtered
            counts.update(checker.reasons(ctx, rejected))
            left &= ~rejected
    return explanation
