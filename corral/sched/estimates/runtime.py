"""Runtime estimates per equivalence class and per job, from the tasks that finished.

Each finished task's runtime goes into its job's and its class's statistics (a
:class:`~corral.sched.estimates.sketch.RunningMean` and a
:class:`~corral.sched.estimates.sketch.QuantileSketch`). Until ``min_samples``
tasks of a job finished, its estimate is its *prior*: the spec's
``expected_runtime`` if given, else what the earlier jobs of the same name and
user (the same job id, submitted again) measured, else the class's own figures
once it has enough, else none (``source == "none"``, zero seconds: nothing is
known, so nothing is charged). A class (tasks of equal requests, whatever their
job) answers from its own tasks once it has ``min_samples``; below that, from the
job's estimate. Pure: the master feeds it (corral/master/estimates.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable

from corral.sched.estimates.sketch import QuantileSketch, RunningMean


@dataclass(frozen=True)
class Estimate:
    mean_s: float
    p50_s: float
    p90_s: float
    samples: int  # finished tasks it rests on (0 for a spec prior)
    source: str  # tasks | class | spec | history | none

    @property
    def known(self) -> bool:
        return self.source != "none"


NONE = Estimate(0.0, 0.0, 0.0, 0, "none")


class RuntimeStats:
    __slots__ = ("mean", "sketch")

    def __init__(self) -> None:
        self.mean = RunningMean()
        self.sketch = QuantileSketch()

    def add(self, seconds: float) -> None:
        self.mean.add(seconds)
        self.sketch.add(seconds)

    def merge(self, other: "RuntimeStats") -> None:
        self.mean.merge(other.mean)
        self.sketch.merge(other.sketch)

    @property
    def n(self) -> int:
        return self.mean.n

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.to_list(), "sketch": self.sketch.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RuntimeStats":
        out = cls()
        out.mean, out.sketch = RunningMean.from_list(d["mean"]), QuantileSketch.from_dict(d["sketch"])
        return out

    def estimate(self, source: str) -> Estimate:
        return Estimate(self.mean.mean, self.sketch.quantile(0.5), self.sketch.quantile(0.9), self.n, source)


class RuntimeEstimator:
    def __init__(self, min_samples: int = 3):
        self.min_samples = min_samples
        self._jobs: dict[str, RuntimeStats] = {}
        self._classes: dict[Hashable, RuntimeStats] = {}
        self._history: dict[str, RuntimeStats] = {}  # earlier incarnations of a job id
        self._expected: dict[str, float] = {}  # the spec's expected_runtime

    def to_dict(self, encode_class: Callable[[Hashable], Any]) -> dict[str, Any]:
        """Everything it learnt, mappings in the order they were filled (the events' order); a class
        key is written by ``encode_class`` (the caller knows what its classes are)."""
        return {"min_samples": self.min_samples,
                "jobs": [[j, s.to_dict()] for j, s in self._jobs.items()],
                "classes": [[encode_class(c), s.to_dict()] for c, s in self._classes.items()],
                "history": [[j, s.to_dict()] for j, s in self._history.items()],
                "expected": [[j, e] for j, e in self._expected.items()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], decode_class: Callable[[Any], Hashable]) -> "RuntimeEstimator":
        out = cls(d["min_samples"])
        out._jobs = {j: RuntimeStats.from_dict(s) for j, s in d["jobs"]}
        out._classes = {decode_class(c): RuntimeStats.from_dict(s) for c, s in d["classes"]}
        out._history = {j: RuntimeStats.from_dict(s) for j, s in d["history"]}
        out._expected = {j: float(e) for j, e in d["expected"]}
        return out

    def job_submitted(self, job: str, expected_runtime: float | None) -> None:
        """A job (again): what an earlier job of this id measured becomes its history."""
        earlier = self._jobs.pop(job, None)
        if earlier is not None and earlier.n:
            self._history.setdefault(job, RuntimeStats()).merge(earlier)
        self.set_expected(job, expected_runtime)

    def set_expected(self, job: str, expected_runtime: float | None) -> None:
        if expected_runtime is None:
            self._expected.pop(job, None)
        else:
            self._expected[job] = float(expected_runtime)

    def observe(self, job: str, cls: Hashable, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self._jobs.setdefault(job, RuntimeStats()).add(seconds)
        if cls is not None:
            self._classes.setdefault(cls, RuntimeStats()).add(seconds)

    def prior(self, job: str) -> Estimate:
        expected = self._expected.get(job)
        if expected is not None:
            return Estimate(expected, expected, expected, 0, "spec")
        history = self._history.get(job)
        if history is not None and history.n:
            return history.estimate("history")
        return NONE

    def for_job(self, job: str) -> Estimate:
        stats = self._jobs.get(job)
        if stats is not None and stats.n >= self.min_samples:
            return stats.estimate("tasks")
        return self.prior(job)

    def for_class(self, cls: Hashable, job: str | None = None) -> Estimate:
        stats = self._classes.get(cls)
        if stats is not None and stats.n >= self.min_samples:
            return stats.estimate("class")
        return self.for_job(job) if job is not None else NONE

    def estimate(self, job: str, cls: Hashable = None) -> Estimate:
        """A task's runtime: its job's once the job has enough finished tasks, else its class's, else the prior."""
        job_estimate = self.for_job(job)
        if job_estimate.source == "tasks":
            return job_estimate
        if cls is not None:
            stats = self._classes.get(cls)
            if stats is not None and stats.n >= self.min_samples and job_estimate.source == "none":
                return stats.estimate("class")
        return job_estimate
