"""Failure probability of a job's task attempts, from the job's history.

An attempt ends by finishing or by failing (its agent gave up on it); other
ends (evicted, lost, killed) say nothing about the task and are not counted.
The estimate is the posterior mean under a Beta prior of mean ``prior_p`` and
weight ``prior_weight`` attempts: ``(failures + w·p0) / (attempts + w)``, so a new
job is assumed to fail rarely and a job that keeps failing is believed quickly.
Capped at ``cap`` so that an inflation by ``1 / (1 - p)`` stays finite. Pure.
"""

from __future__ import annotations


class FailureEstimator:
    def __init__(self, prior_p: float = 0.02, prior_weight: float = 2.0, cap: float = 0.9):
        self.prior_p = prior_p
        self.prior_weight = prior_weight
        self.cap = cap
        self._counts: dict[str, list[int]] = {}  # job -> [failures, attempts]

    def to_dict(self) -> dict:
        return {"prior_p": self.prior_p, "prior_weight": self.prior_weight, "cap": self.cap,
                "counts": [[job, f, n] for job, (f, n) in self._counts.items()]}

    @classmethod
    def from_dict(cls, d: dict) -> "FailureEstimator":
        out = cls(d["prior_p"], d["prior_weight"], d["cap"])
        out._counts = {job: [int(f), int(n)] for job, f, n in d["counts"]}
        return out

    def observe(self, job: str, failed: bool) -> None:
        counts = self._counts.setdefault(job, [0, 0])
        counts[0] += int(failed)
        counts[1] += 1

    def counts(self, job: str) -> tuple[int, int]:
        failures, attempts = self._counts.get(job, (0, 0))
        return failures, attempts

    def probability(self, job: str) -> float:
        failures, attempts = self.counts(job)
        p = (failures + self.prior_weight * self.prior_p) / (attempts + self.prior_weight)
        return min(p, self.cap)
