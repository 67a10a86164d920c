"""Estimated completion time of a task on a machine (Apollo §3.2).

    completion = wait + (start-up + runtime) / (1 - p)

``wait``: the wait-time matrix's expected wait of the task's shape there;
``start-up``: the machine's first or warm start cost for the task's job;
``runtime``: the job's (or class's, or prior's) mean runtime; ``p``: the job's
failure probability. A failed attempt is taken to cost a whole attempt and to be
retried at once, so the attempts are geometric with mean ``1 / (1 - p)``; the
wait is paid once (a retry is placed again, but the estimate cannot know where).
Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

from corral.sched.estimates.failures import FailureEstimator
from corral.sched.estimates.runtime import RuntimeEstimator
from corral.sched.estimates.startup import StartupEstimator
from corral.sched.estimates.wait_matrix import WaitTimeMatrix


@dataclass(frozen=True)
class TaskQuery:
    """What a completion estimate needs of a task."""

    job: str
    cls: Hashable  # its equivalence class (the scheduler's TaskRequest), or None
    cpu: float  # cores
    memory_bytes: int


def completion_s(wait_s: float, startup_s: float, runtime_s: float, failure_p: float) -> float:
    return wait_s + (startup_s + runtime_s) / (1.0 - failure_p)


class CompletionModel:
    def __init__(self, runtimes: RuntimeEstimator, startups: StartupEstimator, failures: FailureEstimator,
                 matrix: WaitTimeMatrix):
        self.runtimes = runtimes
        self.startups = startups
        self.failures = failures
        self.matrix = matrix

    def parts(self, task: TaskQuery, machine: str) -> dict[str, float]:
        return {"wait_s": self.matrix.expected_wait_s(machine, task.cpu, task.memory_bytes),
                "startup_s": self.startups.estimate(machine, task.job),
                "runtime_s": self.runtimes.estimate(task.job, task.cls).mean_s,
                "failure_p": self.failures.probability(task.job)}

    def estimated_completion_s(self, task: TaskQuery, machine: str) -> float:
        return completion_s(**self.parts(task, machine))
