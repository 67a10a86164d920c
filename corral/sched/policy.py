"""A scheduling policy: checkers plus weighted scorers, and one registry of them by name.

A policy is named either as a preset (``hybrid``, ``best-fit``, ``worst-fit``,
``random``) or as weighted scorers, ``"best-fit=1,spread=0.5"``. Other rooms
(the openb benchmark's policies, for one) add presets with
:func:`register_policy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from corral.sched.cellview import CellView
from corral.sched.checkers import Checker, default_checkers
from corral.sched.context import EvalContext
from corral.sched.gpus import select_gpus_best
from corral.sched.request import TaskRequest
from corral.sched.scorers import BestFit, DomainSpread, RandomScore, Scorer, SoftConstraints, StrandingHybrid, WorstFit

GpuSelector = Callable[[CellView, int, TaskRequest], tuple[int, ...]]


@dataclass(frozen=True)
class _Parts:
    """The checkers and scorers that apply to one request, split by cacheability."""

    local_checkers: tuple[Checker, ...]
    other_checkers: tuple[Checker, ...]
    local_scorers: tuple[tuple[Scorer, float], ...]
    other_scorers: tuple[tuple[Scorer, float], ...]
    total_weight: float
    machine_local: bool  # no part depends on other machines: results can be cached per machine
    predictable: bool  # scores of hypothetical states are the scores those states will have


@dataclass
class Policy:
    name: str
    scorers: list[tuple[Scorer, float]]
    checkers: list[Checker] = field(default_factory=default_checkers)
    select_gpus: GpuSelector = select_gpus_best
    _parts: dict[TaskRequest, _Parts] = field(default_factory=dict, repr=False)

    def parts(self, req: TaskRequest) -> _Parts:
        parts = self._parts.get(req)
        if parts is None:
            checkers = [c for c in self.checkers if c.applies(req)]
            scorers = [(s, w) for s, w in self.scorers if w > 0 and s.applies(req)]
            parts = self._parts[req] = _Parts(
                tuple(c for c in checkers if c.machine_local),
                tuple(c for c in checkers if not c.machine_local),
                tuple((s, w) for s, w in scorers if s.machine_local),
                tuple((s, w) for s, w in scorers if not s.machine_local),
                sum(w for _, w in scorers) or 1.0,
                machine_local=all(c.machine_local for c in checkers) and all(s.machine_local for s, _ in scorers),
                predictable=all(s.predictable for s, _ in scorers),
            )
        return parts

    @staticmethod
    def _run(ctx: EvalContext, checkers, scorers, total_weight: float) -> tuple[np.ndarray, np.ndarray]:
        mask = None
        for checker in checkers:
            mask = checker.check(ctx) if mask is None else mask & checker.check(ctx)
        score = None
        for scorer, weight in scorers:
            part = scorer.score(ctx)
            if weight != total_weight:
                part = part * (weight / total_weight)
            score = part if score is None else score + part
        return (
            np.ones(len(ctx), dtype=bool) if mask is None else mask,
            np.zeros(len(ctx)) if score is None else score,
        )

    def evaluate_local(self, ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
        """Feasibility and score from the cacheable (machine-local) parts."""
        parts = self.parts(ctx.req)
        return self._run(ctx, parts.local_checkers, parts.local_scorers, parts.total_weight)

    def evaluate_other(self, ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
        """Feasibility and score from the parts that depend on other machines."""
        parts = self.parts(ctx.req)
        return self._run(ctx, parts.other_checkers, parts.other_scorers, parts.total_weight)

    def could_ever_fit(self, view: CellView, req: TaskRequest) -> np.ndarray:
        """Machines that could hold the task if they were empty (capacity, GPUs, constraints):
        the others never need to be looked at for this request."""
        ctx = EvalContext(view, req, np.arange(len(view)), free=view.capacity, gpu_idle=view.gpu_idle_when_empty)
        mask = np.ones(len(view), dtype=bool)
        for checker in self.parts(req).local_checkers:
            if checker.resources_only:
                mask &= checker.check(ctx)
        return mask

    def evaluate(self, ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
        mask, score = self.evaluate_local(ctx)
        if not self.parts(ctx.req).machine_local:
            other_mask, other_score = self.evaluate_other(ctx)
            mask &= other_mask
            score += other_score
        return mask, score


ScorerFactory = Callable[[int], Scorer]
SCORERS: dict[str, ScorerFactory] = {
    "best-fit": lambda seed: BestFit(),
    "worst-fit": lambda seed: WorstFit(),
    "hybrid": lambda seed: StrandingHybrid(),
    "random": lambda seed: RandomScore(seed),
    "soft-constraints": lambda seed: SoftConstraints(),
    "spread": lambda seed: DomainSpread(),
}
PolicyFactory = Callable[[int], Policy]
POLICIES: dict[str, PolicyFactory] = {}
DEFAULT_POLICY = "hybrid"


def register_scorer(name: str, factory: ScorerFactory) -> None:
    SCORERS[name] = factory


def register_policy(name: str, factory: PolicyFactory) -> None:
    POLICIES[name] = factory


def _weighted(name: str, weights: dict[str, float]) -> PolicyFactory:
    return lambda seed: Policy(name, [(SCORERS[s](seed), w) for s, w in weights.items()])


for _packing in ("hybrid", "best-fit", "worst-fit"):
    register_policy(_packing, _weighted(_packing, {_packing: 1.0, "soft-constraints": 1.0, "spread": 1.0}))
register_policy("random", _weighted("random", {"random": 1.0}))


class PolicyError(ValueError):
    pass


def make_policy(spec: str = DEFAULT_POLICY, seed: int = 0) -> Policy:
    """A policy by preset name, or from ``"scorer=weight,..."``."""
    if spec in POLICIES:
        return POLICIES[spec](seed)
    weights: dict[str, float] = {}
    for part in spec.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in SCORERS or not weight:
            raise PolicyError(
                f"unknown policy {spec!r}: expected one of {', '.join(sorted(POLICIES))} "
                f"or scorer=weight pairs with scorers {', '.join(sorted(SCORERS))}"
            )
        try:
            weights[name] = float(weight)
        except ValueError:
            raise PolicyError(f"weight of {name} must be a number, got {weight!r}") from None
    return _weighted(spec, weights)(seed)
