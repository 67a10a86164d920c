"""Scoring policies: small swappable units, combined with weights by a :class:`~corral.sched.policy.Policy`."""

from corral.sched.scorers.base import Scorer
from corral.sched.scorers.bestfit import BestFit
from corral.sched.scorers.hybrid import StrandingHybrid
from corral.sched.scorers.random import RandomScore
from corral.sched.scorers.soft import SoftConstraints
from corral.sched.scorers.spread import DomainSpread
from corral.sched.scorers.worstfit import WorstFit

__all__ = ["BestFit", "DomainSpread", "RandomScore", "Scorer", "SoftConstraints", "StrandingHybrid", "WorstFit"]
