"""A scheduling policy: checkers plus weighted scorers, and one registry of them by name.

A policy spec (what ``--policy`` takes, in ``corral sim`` and ``corral master``
alike) is either a preset name or weighted scorers:

* presets: ``hybrid`` (the default), ``best-fit``, ``worst-fit``, ``random``,
  and the GPU-sharing ones of the FGD paper (ATC'23) and corral's own:
  ``uniform-random``, ``dot-product``, ``gpu-clustering``, ``gpu-packing``,
  ``fgd-bestfit``, ``fgd``, ``fgd-lookahead`` (see :func:`known_policies`);
* Sigma's water levels: ``stability-first`` (spread) and ``utilisation-first``
  (pack; ``utilization-first`` is the same), corral/sched/scorers/water_levels.py;
* weighted scorers: ``"best-fit=1,spread=0.5"`` (scorers in :data:`SCORERS`).

A job may name a water level of its own (``placement: stability-first`` in its
spec, :attr:`TaskRequest.placement`): its tasks are then scored by that
preset's scorers, and checked by the cell policy's checkers as every task is.

Every preset is registered when this module is imported. The fragmentation-aware
presets (``fgd``, ``fgd-lookahead``) are registered without typical tasks; the
openb experiment builds them with its workload's (corral.sim.openb.policies).
:func:`parse_policy_spec` reads a spec or says, in one line, what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from corral.model.placement import ALIASES as PLACEMENT_ALIASES, PLACEMENTS
from corral.sched.cellview import CellView
from corral.sched.checkers import Checker, default_checkers
from corral.sched.context import EvalContext
from corral.sched.gpus import select_gpus_best
from corral.sched.request import TaskRequest
from corral.sched.scorers import BestFit, DomainSpread, RandomScore, Scorer, SoftConstraints, StrandingHybrid, WorstFit
from corral.sched.scorers.completion_time import CompletionTime
from corral.sched.scorers.dot_product import DotProduct
from corral.sched.scorers.fgd import FGDScore, TypicalPods, fgd_select_gpus
from corral.sched.scorers.fgd_bestfit import FgdBestFit
from corral.sched.scorers.gpu_clustering import GpuClustering
from corral.sched.scorers.gpu_packing import GpuPacking
from corral.sched.scorers.uniform_random import UniformRandom
from corral.sched.scorers.water_levels import StabilityFirst, UtilisationFirst

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

    _placements: dict[str, list[tuple[Scorer, float]]] = field(default_factory=dict, repr=False)

    def scorers_for(self, req: TaskRequest) -> list[tuple[Scorer, float]]:
        """The cell's scorers, or those of the water level the task's job asked for."""
        if req.placement is None or req.placement == self.name:
            return self.scorers
        scorers = self._placements.get(req.placement)
        if scorers is None:
            scorers = self._placements[req.placement] = POLICIES[req.placement](0).scorers
        return scorers

    def parts(self, req: TaskRequest) -> _Parts:
        parts = self._parts.get(req)
        if parts is None:
            checkers = [c for c in self.checkers if c.applies(req)]
            scorers = [(s, w) for s, w in self.scorers_for(req) if w > 0 and s.applies(req)]
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
    "completion-time": lambda seed: CompletionTime(),  # the master hands in its completion estimate
    "worst-fit": lambda seed: WorstFit(),
    "hybrid": lambda seed: StrandingHybrid(),
    "random": lambda seed: RandomScore(seed),
    "soft-constraints": lambda seed: SoftConstraints(),
    "spread": lambda seed: DomainSpread(),
    "stability-first": lambda seed: StabilityFirst(),
    "utilisation-first": lambda seed: UtilisationFirst(),
    "utilization-first": lambda seed: UtilisationFirst(),
}
PolicyFactory = Callable[[int], Policy]
POLICIES: dict[str, PolicyFactory] = {}
DEFAULT_POLICY = "hybrid"


class PolicyError(ValueError):
    """A policy spec that names no policy; the message is one line that lists the known ones."""


def register_scorer(name: str, factory: ScorerFactory) -> None:
    SCORERS[name] = factory


def register_policy(name: str, factory: PolicyFactory) -> None:
    POLICIES[name] = factory


def known_policies() -> list[str]:
    """The names of every registered preset, sorted."""
    return sorted(POLICIES)


def _weighted(name: str, weights: dict[str, float]) -> PolicyFactory:
    return lambda seed: Policy(name, [(SCORERS[s](seed), w) for s, w in weights.items()])


for _packing in ("hybrid", "best-fit", "worst-fit"):
    register_policy(_packing, _weighted(_packing, {_packing: 1.0, "soft-constraints": 1.0, "spread": 1.0}))
register_policy("random", _weighted("random", {"random": 1.0}))
# Sigma's water levels, with soft constraints and failure-domain spreading as the packing presets have.
for _level in (*PLACEMENTS, *PLACEMENT_ALIASES):
    register_policy(_level, _weighted(_level, {_level: 1.0, "soft-constraints": 1.0, "spread": 1.0}))


# The GPU-sharing policies, by their names in corral's registry: the FGD paper's six (whose
# "random" and "best-fit" are named uniform-random and fgd-bestfit here, apart from corral's
# presets of those names) and corral's fgd-lookahead. A factory takes the seed and the
# workload's typical tasks (only fgd and fgd-lookahead use them).
GpuPolicyFactory = Callable[[int, TypicalPods], Policy]


def _uniform_random(seed: int, typical: TypicalPods) -> Policy:
    scorer = UniformRandom(seed)
    return Policy("uniform-random", [(scorer, 1.0)], select_gpus=scorer.select_gpus)


def _fgd(seed: int, typical: TypicalPods) -> Policy:
    scorer = FGDScore(typical)
    return Policy("fgd", [(scorer, 1.0)], select_gpus=fgd_select_gpus(scorer))


def _fgd_lookahead(seed: int, typical: TypicalPods) -> Policy:
    # Imported here: fgd_lookahead builds its Policy from this module.
    from corral.sched.scorers.fgd_lookahead import lookahead_policy

    return lookahead_policy(typical)


GPU_POLICIES: dict[str, GpuPolicyFactory] = {
    "uniform-random": _uniform_random,
    "dot-product": lambda seed, typical: Policy("dot-product", [(DotProduct(), 1.0)]),
    "gpu-clustering": lambda seed, typical: Policy("gpu-clustering", [(GpuClustering(), 1.0)]),
    "gpu-packing": lambda seed, typical: Policy("gpu-packing", [(GpuPacking(), 1.0)]),
    "fgd-bestfit": lambda seed, typical: Policy("fgd-bestfit", [(FgdBestFit(), 1.0)]),
    "fgd": _fgd,
    "fgd-lookahead": _fgd_lookahead,
}
for _name, _factory in GPU_POLICIES.items():
    register_policy(_name, lambda seed, f=_factory: f(seed, TypicalPods.empty()))


@dataclass(frozen=True)
class PolicySpec:
    """A read policy spec: a registered ``preset``, or ``weights`` of scorers (in the order given).
    ``text`` is the spec as written (stripped); it names the policy."""

    text: str
    preset: str | None = None
    weights: tuple[tuple[str, float], ...] = ()

    def make(self, seed: int = 0) -> Policy:
        if self.preset is not None:
            return POLICIES[self.preset](seed)
        return _weighted(self.text, dict(self.weights))(seed)


def _unknown(text: str) -> PolicyError:
    return PolicyError(f"unknown policy {text!r}: expected one of {', '.join(known_policies())} "
                       f"or scorer=weight pairs with scorers {', '.join(sorted(SCORERS))}")


def parse_policy_spec(text: str) -> PolicySpec:
    """Read ``--policy``: a preset name (``fgd``) or ``scorer=weight`` pairs separated by commas
    (``best-fit=1,spread=0.5``; weights finite and >= 0, at least one > 0, each scorer once).
    Raises :class:`PolicyError` with a one-line message naming the known presets and scorers."""
    if not isinstance(text, str):
        raise PolicyError(f"expected a policy name or scorer=weight pairs, got {text!r}")
    text = text.strip()
    if text in POLICIES:
        return PolicySpec(text, preset=text)
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, weight = (p.strip() for p in part.partition("="))
        if name not in SCORERS or not sep or not weight:
            raise _unknown(text)
        if name in weights:
            raise PolicyError(f"policy {text!r}: scorer {name} is named twice")
        try:
            value = float(weight)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise PolicyError(f"policy {text!r}: weight of {name} must be a number >= 0, got {weight!r}")
        weights[name] = value
    if not any(weights.values()):
        raise PolicyError(f"policy {text!r}: expected at least one weight greater than 0")
    return PolicySpec(text, weights=tuple(weights.items()))


def make_policy(spec: str | PolicySpec = DEFAULT_POLICY, seed: int = 0) -> Policy:
    """A policy from a spec (:func:`parse_policy_spec`); raises :class:`PolicyError` for a bad one."""
    if not isinstance(spec, PolicySpec):
        spec = parse_policy_spec(spec)
    return spec.make(seed)
