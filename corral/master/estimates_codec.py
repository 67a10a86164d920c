"""The checkpoint form of the master's estimates (corral.master.estimates.MasterEstimates).

Compaction deletes the events before a checkpoint, so what the estimators learnt
from them lives in the checkpoint (key ``estimates``), or a restored master would
start its runtimes, failure odds and start-up costs from nothing. Everything is
written in the order the events filled it (machines, jobs, classes), so a state
restored from a checkpoint and fed the log's tail holds the same estimates as one
that applied the whole log. Classes are the scheduler's ``TaskRequest`` (frozen
dataclasses of numbers, strings, tuples and one enum): each distinct one is
written once in ``classes`` and named by its index elsewhere.
"""

from __future__ import annotations

from typing import Any, Hashable

from corral.model.constraints import Constraint, SoftConstraint
from corral.model.job import AppClass
from corral.model.resources import Resources
from corral.sched.estimates.failures import FailureEstimator
from corral.sched.estimates.runtime import RuntimeEstimator
from corral.sched.estimates.startup import StartupEstimator
from corral.sched.request import TaskRequest

FORMAT = 1


def request_to_dict(r: TaskRequest) -> dict[str, Any]:
    res = r.resources
    return {"resources": {"cpu": res.cpu, "memory": res.memory, "disk": res.disk, "gpu": res.gpu,
                          "gpu_milli": res.gpu_milli, "gpu_models": list(res.gpu_models), "ports": list(res.ports),
                          "dynamic_ports": res.dynamic_ports},
            "priority": r.priority, "appclass": r.appclass.value,
            "constraints": [_constraint(c) for c in r.constraints],
            "preferences": [[_constraint(p.constraint), p.weight] for p in r.preferences],
            "max_per_domain": [list(x) for x in r.max_per_domain], "spread": r.spread, "job": r.job,
            "placement": r.placement, "opportunistic": r.opportunistic}


def request_from_dict(d: dict[str, Any]) -> TaskRequest:
    res = d["resources"]
    return TaskRequest(
        Resources(res["cpu"], res["memory"], res["disk"], res["gpu"], res["gpu_milli"], tuple(res["gpu_models"]),
                  tuple(res["ports"]), res["dynamic_ports"]),
        d["priority"], AppClass(d["appclass"]), tuple(_constraint_from(c) for c in d["constraints"]),
        tuple(SoftConstraint(_constraint_from(c), w) for c, w in d["preferences"]),
        tuple((k, n) for k, n in d["max_per_domain"]), d["spread"], d["job"], d["placement"], d["opportunistic"])


def _constraint(c: Constraint) -> list[Any]:
    return [c.attribute, c.op, list(c.values)]


def _constraint_from(c: list[Any]) -> Constraint:
    return Constraint(c[0], c[1], tuple(c[2]))


def _startup_key(key: Hashable) -> Any:
    return list(key) if isinstance(key, tuple) else key  # ("command", cmd) -> a JSON list; a job id stays


def _startup_key_from(key: Any) -> Hashable:
    return tuple(key) if isinstance(key, list) else key


def estimates_to_dict(est: Any) -> dict[str, Any]:
    table: dict[TaskRequest, int] = {}

    def cls(request: Hashable) -> int | None:
        return None if request is None else table.setdefault(request, len(table))

    out = {"format": FORMAT, "runtimes": est.runtimes.to_dict(cls), "failures": est.failures.to_dict(),
           "startups": est.startups.to_dict(_startup_key),
           "started": [[task, t, cls(request)] for task, (t, request) in est.started.items()]}
    out["classes"] = [request_to_dict(r) for r in table]  # in index order (a dict keeps its insertion order)
    return out


def estimates_from_dict(est: Any, d: dict[str, Any]) -> None:
    """Fill ``est`` (a new MasterEstimates) from :func:`estimates_to_dict`'s form."""
    if d.get("format", 1) > FORMAT:
        raise ValueError(f"checkpoint estimates format {d['format']} is newer than this corral reads ({FORMAT})")
    classes = [request_from_dict(r) for r in d["classes"]]

    def cls(index: int | None) -> TaskRequest | None:
        return None if index is None else classes[index]

    est.runtimes = RuntimeEstimator.from_dict(d["runtimes"], cls)
    est.failures = FailureEstimator.from_dict(d["failures"])
    est.startups = StartupEstimator.from_dict(d["startups"], _startup_key_from)
    est.started = {task: (float(t), cls(index)) for task, t, index in d["started"]}
