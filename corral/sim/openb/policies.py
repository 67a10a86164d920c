"""The openb benchmark's policies by the names the paper's experiment uses.

``--policy`` names of ``corral sim openb``: ``random``, ``dot-product``,
``gpu-clustering``, ``gpu-packing``, ``best-fit``, ``fgd`` (the paper's six)
and ``corral`` (corral's own openb policy, the default), or any policy spec
corral's registry reads (corral.sched.policy: a preset such as ``hybrid``, or
``scorer=weight`` pairs). The six and corral's are registered in that
registry by corral.sched.policy itself (``random`` as ``uniform-random``,
``best-fit`` as ``fgd-bestfit``, ``corral`` as ``fgd-lookahead``); here they
are built with the workload's typical pods (and, for corral's, its pods).
"""

from __future__ import annotations

from typing import Callable

from corral.sched.policy import GPU_POLICIES, Policy, PolicyError, known_policies, make_policy, parse_policy_spec
from corral.sched.scorers.fgd import TypicalPods

OpenbPolicyFactory = Callable[[int, TypicalPods], Policy]


def _corral(seed: int, typical: TypicalPods, pods=None) -> Policy:
    """``pods``: the workload's original pods as ``(key, memory bytes)`` (rare shapes, memory per shape)."""
    from corral.sched.scorers.fgd_lookahead import RareShapes, lookahead_policy, shape_memory

    if pods is None:
        return lookahead_policy(typical)
    return lookahead_policy(typical, RareShapes.from_pods([k for k, _ in pods], typical), shape_memory(pods))


# The experiment's name -> the name in corral's registry.
REGISTRY_NAMES: dict[str, str] = {
    "random": "uniform-random", "dot-product": "dot-product", "gpu-clustering": "gpu-clustering",
    "gpu-packing": "gpu-packing", "best-fit": "fgd-bestfit", "fgd": "fgd",
}
PAPER_POLICIES: dict[str, OpenbPolicyFactory] = {name: GPU_POLICIES[registered]
                                                 for name, registered in REGISTRY_NAMES.items()}
CORRAL_POLICY = "corral"
OPENB_POLICIES: dict[str, OpenbPolicyFactory] = {**PAPER_POLICIES, CORRAL_POLICY: _corral}
# The artifact's result directory names of the paper's policies.
ARTIFACT_NAMES: dict[str, str] = {
    "random": "01-Random", "dot-product": "02-DotProd", "gpu-clustering": "03-GpuClustering",
    "gpu-packing": "04-GpuPacking", "best-fit": "05-BestFit", "fgd": "06-FGD",
}


def policy_names() -> list[str]:
    """The experiment's names and every preset of corral's registry, sorted."""
    return sorted(set(OPENB_POLICIES) | set(known_policies()))


def check_openb_policy(spec: str) -> None:
    """Raise :class:`PolicyError` (one line naming the known ones) unless ``spec`` is an experiment
    name or a spec corral's registry reads."""
    if spec in OPENB_POLICIES:
        return
    try:
        parse_policy_spec(spec)
    except PolicyError:
        if "=" in spec:  # weighted scorers: the registry's message says which part is wrong
            raise
        raise PolicyError(f"unknown policy {spec!r}: expected one of {', '.join(policy_names())} "
                          "or scorer=weight pairs") from None


def make_openb_policy(name: str, seed: int, typical: TypicalPods, pods=None) -> Policy:
    """An openb policy by its experiment name, or any policy spec of corral's registry. ``pods``:
    the workload's original pods as ``(key, memory bytes)``, for corral's policy. Raises
    :class:`PolicyError` for an unknown one."""
    if name == CORRAL_POLICY:
        return _corral(seed, typical, pods)
    factory = OPENB_POLICIES.get(name)
    if factory is not None:
        return factory(seed, typical)
    return make_policy(name, seed)
