"""The openb benchmark's policies by the names the paper's experiment uses, and their registration
in corral's policy registry.

``--policy`` names of ``corral sim openb``: ``random``, ``dot-product``,
``gpu-clustering``, ``gpu-packing``, ``best-fit``, ``fgd`` (the paper's six)
and ``corral`` (corral's own openb policy, the default). Two of them clash with
corral's global presets (``random``, ``best-fit``) and are registered
globally as ``uniform-random`` and ``fgd-bestfit``; any other registered
policy name also works in the experiment. A factory takes the seed and the
workload's typical pods (used by the fragmentation-aware ones).
"""

from __future__ import annotations

from typing import Callable

from corral.sched.policy import POLICIES, Policy, make_policy, register_policy
from corral.sched.scorers.dot_product import DotProduct
from corral.sched.scorers.fgd import FGDScore, TypicalPods, fgd_select_gpus
from corral.sched.scorers.fgd_bestfit import FgdBestFit
from corral.sched.scorers.gpu_clustering import GpuClustering
from corral.sched.scorers.gpu_packing import GpuPacking
from corral.sched.scorers.uniform_random import UniformRandom

OpenbPolicyFactory = Callable[[int, TypicalPods], Policy]


def _random(seed: int, typical: TypicalPods) -> Policy:
    scorer = UniformRandom(seed)
    return Policy("uniform-random", [(scorer, 1.0)], select_gpus=scorer.select_gpus)


def _fgd(seed: int, typical: TypicalPods) -> Policy:
    scorer = FGDScore(typical)
    return Policy("fgd", [(scorer, 1.0)], select_gpus=fgd_select_gpus(scorer))


def _corral(seed: int, typical: TypicalPods, pods=None) -> Policy:
    """``pods``: the workload's original pods as ``(key, memory bytes)`` (rare shapes, memory per shape)."""
    from corral.sched.scorers.fgd_lookahead import RareShapes, lookahead_policy, shape_memory

    if pods is None:
        return lookahead_policy(typical)
    return lookahead_policy(typical, RareShapes.from_pods([k for k, _ in pods], typical), shape_memory(pods))


PAPER_POLICIES: dict[str, OpenbPolicyFactory] = {
    "random": _random,
    "dot-product": lambda seed, typical: Policy("dot-product", [(DotProduct(), 1.0)]),
    "gpu-clustering": lambda seed, typical: Policy("gpu-clustering", [(GpuClustering(), 1.0)]),
    "gpu-packing": lambda seed, typical: Policy("gpu-packing", [(GpuPacking(), 1.0)]),
    "best-fit": lambda seed, typical: Policy("fgd-bestfit", [(FgdBestFit(), 1.0)]),
    "fgd": _fgd,
}
CORRAL_POLICY = "corral"
OPENB_POLICIES: dict[str, OpenbPolicyFactory] = {**PAPER_POLICIES, CORRAL_POLICY: _corral}
# The artifact's result directory names of the paper's policies.
ARTIFACT_NAMES: dict[str, str] = {
    "random": "01-Random", "dot-product": "02-DotProd", "gpu-clustering": "03-GpuClustering",
    "gpu-packing": "04-GpuPacking", "best-fit": "05-BestFit", "fgd": "06-FGD",
}
_GLOBAL_NAMES = {"random": "uniform-random", "best-fit": "fgd-bestfit", CORRAL_POLICY: "fgd-lookahead"}


def register_all() -> None:
    """Put the openb policies in corral's registry (typical pods empty: set them per workload)."""
    for name, factory in OPENB_POLICIES.items():
        global_name = _GLOBAL_NAMES.get(name, name)
        if global_name not in POLICIES:
            register_policy(global_name, lambda seed, f=factory: f(seed, TypicalPods.empty()))


register_all()


def policy_names() -> list[str]:
    return sorted(set(OPENB_POLICIES) | set(POLICIES))


def make_openb_policy(name: str, seed: int, typical: TypicalPods, pods=None) -> Policy:
    """An openb policy by its experiment name, or any registered corral policy. ``pods``: the
    workload's original pods as ``(key, memory bytes)``, for corral's policy."""
    if name == CORRAL_POLICY:
        return _corral(seed, typical, pods)
    factory = OPENB_POLICIES.get(name)
    if factory is not None:
        return factory(seed, typical)
    if name in POLICIES:
        return make_policy(name, seed)
    raise KeyError(name)
