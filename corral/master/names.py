"""The name service's records (Borg's BNS): where each running task of a job answers.

Every running task is ``INDEX.JOB.USER.CELL`` (its task name) and every job
``JOB.USER.CELL``; :func:`endpoints` lists a job's running tasks with their
machine, its address and the task's named ports, :func:`lookup` answers a DNS
question name from the state. Pure reads of the master's state (call under
its lock); the DNS responder (``dns.py``) and ``GET /api/v1/names/JOB``
(``names_api.py``) serve them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from corral.model.job import TaskState
from corral.model.ports import named
from corral.model.spec import parse_job_spec


@dataclass(frozen=True)
class Endpoint:
    task: str  # INDEX.JOB.USER.CELL
    index: int
    machine: str
    address: str  # the machine's IPv4 address ("" when its agent address is not an IPv4 literal)
    ports: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine_address(state: Any, machine: str) -> str:
    """The IPv4 address of ``machine``'s agent (from its registered address), or ""."""
    record = state.machines.get(machine)
    host = urlsplit(record.address).hostname if record is not None and record.address else None
    try:
        return str(ipaddress.IPv4Address(host)) if host else ""
    except ValueError:
        return ""


def endpoints(state: Any, job_id: str) -> list[Endpoint]:
    """The running tasks of ``job_id`` by index (empty if the job has none or is unknown)."""
    job = state.jobs.get(job_id)
    if job is None:
        return []
    out = []
    for task in state.tasks_of(job_id):
        if task.state is not TaskState.RUNNING or task.machine is None:
            continue
        names = _port_names(job, task.version)
        ports = named(names, task.ports) if names else {}
        out.append(Endpoint(task.name, task.index, task.machine, machine_address(state, task.machine), ports))
    return sorted(out, key=lambda e: e.index)


def _port_names(job: Any, version: int) -> dict[str, int]:
    """The named ports of version ``version`` of the job's spec (a task mid-way through a rolling
    update still runs an older one)."""
    if version == job.version or version not in job.old_specs:
        return job.spec.resources.named_ports
    return parse_job_spec(job.old_specs[version]).resources.named_ports


def job_name(job_id: str, cell: str) -> str:
    """``web.alice`` -> ``web.alice.local``."""
    return f"{job_id}.{cell}"


@dataclass(frozen=True)
class Answer:
    """What a DNS question name means: ``service`` set for ``_http._tcp.<name>``; ``endpoints``
    the running tasks the name stands for (one for a task name, all for a job name)."""

    name: str  # the name without the service labels, lower case, no trailing dot
    endpoints: list[Endpoint]
    service: str | None = None


def lookup(state: Any, qname: str) -> Answer | None:
    """The records of DNS name ``qname`` (trailing dot optional), or None if it names nothing in
    this cell: neither a job (``JOB.USER.CELL``) nor a task (``INDEX.JOB.USER.CELL``)."""
    labels = qname.rstrip(".").lower().split(".")
    service = None
    if len(labels) >= 2 and labels[0].startswith("_") and labels[1] in ("_tcp", "_udp"):
        service, labels = labels[0][1:], labels[2:]
    cell = state.cell.lower()
    if len(labels) == 3 and labels[2] == cell:
        job_id = f"{labels[0]}.{labels[1]}"
        if job_id not in state.jobs:
            return None
        return Answer(".".join(labels), endpoints(state, job_id), service)
    if len(labels) == 4 and labels[3] == cell and labels[0].isdigit():
        job_id = f"{labels[1]}.{labels[2]}"
        if job_id not in state.jobs:
            return None
        task = f"{int(labels[0])}.{job_id}.{state.cell}"
        if task not in state.tasks:
            return None
        return Answer(".".join(labels), [e for e in endpoints(state, job_id) if e.task == task], service)
    return None
