"""Feasibility checkers, applied in this order (the first that rejects a machine is its reason)."""

from corral.sched.checkers.base import Checker
from corral.sched.checkers.constraints import ConstraintsHold
from corral.sched.checkers.domains import DomainLimit
from corral.sched.checkers.gpus import GpuFit, GpuModel
from corral.sched.checkers.ports import PortsFree
from corral.sched.checkers.resources import ResourcesFit


def default_checkers() -> list[Checker]:
    return [ConstraintsHold(), GpuModel(), GpuFit(), ResourcesFit(), PortsFree(), DomainLimit()]


__all__ = ["Checker", "ConstraintsHold", "DomainLimit", "GpuFit", "GpuModel", "PortsFree", "ResourcesFit", "default_checkers"]
