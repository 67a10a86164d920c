"""Alibaba GPU-disaggregated DLRM inference (v2025): long-running latency-sensitive services on a synthesised cell.

In: ``disaggregated_DLRM_trace.csv`` (its README: cpu in vCPUs, memory in GiB, gpu whole GPUs,
times in seconds from the trace start, empty creation = existed before the start, empty deletion =
still running at the end). Identical instances of one app deployed together (same role, shape,
density limit, creation and deletion times) become one job of that many tasks, so corral can keep
the app's per-node density limit among them. The trace has no machines: the cell is CPU nodes for
the CN role and 8-GPU nodes for the HN role, each pool sized from the peak concurrent request.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.common import (GiB, clean_name, csv_rows, default_traces_dir, deletion_time, existing, is_empty,
                                      number, peak_demand, rack_attributes)

FILE = "disaggregated_DLRM_trace.csv"
COLUMNS = ("instance_sn", "role", "app_name", "cpu_request", "cpu_limit", "gpu_request", "gpu_limit",
           "memory_request", "memory_limit", "max_instance_per_node", "creation_time", "deletion_time")
PRIORITY = 9  # production: the README calls every instance high-priority, latency-sensitive, long-running
# (cpu millicores, memory bytes, gpus) per node. A CN node must hold the largest CN instance (192 vCPU,
# 1000 GiB); an HN node holds 8 of the common 12-vCPU/120-GiB one-GPU HN instances (96 vCPU, 960 GiB).
NODE_SHAPES = {"CN": (192_000, 1024 * GiB, 0), "HN": (96_000, 1024 * GiB, 8)}


def default_path() -> Path:
    return default_traces_dir() / "alibaba-gpu-v2025-dlrm" / FILE


def load_dlrm(path: str | Path | None = None, *, seed: int = 0, fill: float = 0.85) -> Trace:
    """The DLRM services; each node pool is sized so its peak concurrent request is ``fill`` of it.

    ``path`` is the csv or its folder. Deterministic: ``seed`` is unused.
    """
    file = Path(path) if path is not None else default_path()
    if file.is_dir():
        file = file / FILE
    existing(file, "DLRM trace")
    if not 0 < fill <= 1:
        raise TraceError(file, 0, f"option fill: expected a fraction in (0, 1], got {fill}")
    groups: dict[tuple, list] = {}  # key -> [first instance, line, count]
    for line, row in csv_rows(file, COLUMNS):
        key = _key(file, line, row)
        if key in groups:
            groups[key][2] += 1
        else:
            groups[key] = [row["instance_sn"], line, 1]
    jobs, roles, names = [], [], set()
    for key, (instance, line, count) in groups.items():
        app, role, cpu, memory, gpu, density, created, deleted, cpu_request, memory_request = key
        name = clean_name(f"{app}-{role.lower()}-{instance}")
        if name in names:
            raise TraceError(file, line, f"column 'instance_sn': expected a unique instance, {instance!r} repeats")
        names.add(name)
        jobs.append(TraceJob(
            name=name, user=clean_name(app), arrival=created, cpu=cpu, memory=memory, tasks=count,
            departure=deleted, gpu=gpu, priority=PRIORITY, appclass="latency-sensitive",
            cpu_usage=cpu_request, memory_usage=memory_request,
            max_per_machine=density if density > 0 else None,
        ))
        roles.append(role)
    machines, sizing = _cell(jobs, roles, fill)
    notes = [
        "Every DLRM instance is a production (priority 9), latency-sensitive service; it asks for its limit.",
        "Usage is estimated as the request (cpu_request, memory_request); in this trace request equals limit.",
        "Instances that existed before the trace start arrive at 0; those without a deletion_time run to the end.",
        "Identical instances of an app deployed together are one job; max_instance_per_node is kept as that "
        "job's per-machine limit, but corral cannot apply it across the app's other jobs.",
        f"The trace has no machines: {sizing}",
        "CN and HN nodes carry a role attribute but jobs are not constrained to their role: a CPU-only (CN) "
        "instance may land on a GPU node. rdma_request/limit (RNIC bandwidth) and disk are not modelled.",
    ]
    return Trace("dlrm", machines, sort_jobs(jobs), source=str(file), notes=notes)


def _key(file: Path, line: int, row: dict[str, str]) -> tuple:
    role = row["role"].strip()
    if role not in NODE_SHAPES:
        raise TraceError(file, line, f"column 'role': expected CN or HN, got {role!r}")
    cpu = number(file, line, row, "cpu_limit", "vCPUs")
    cpu_request = number(file, line, row, "cpu_request", "vCPUs")
    memory = number(file, line, row, "memory_limit", "GiB")
    memory_request = number(file, line, row, "memory_request", "GiB")
    gpu = number(file, line, row, "gpu_limit", "whole GPUs", integer=True)
    number(file, line, row, "gpu_request", "whole GPUs", integer=True)
    density = number(file, line, row, "max_instance_per_node", "instances, -1 for no limit", integer=True,
                     minimum=-1)
    created = 0.0
    if not is_empty(row["creation_time"]):
        created = number(file, line, row, "creation_time", "seconds from the trace start")
    deleted = deletion_time(file, line, row, created, "seconds from the trace start")
    if not row["app_name"].strip():
        raise TraceError(file, line, "column 'app_name': expected an application name")
    return (row["app_name"].strip(), role, round(cpu * 1000), round(memory * GiB), gpu, density, created,
            deleted, round(cpu_request * 1000), round(memory_request * GiB))


def _cell(jobs: list[TraceJob], roles: list[str], fill: float) -> tuple[list[TraceMachine], str]:
    machines: list[TraceMachine] = []
    words = []
    for role, (cpu, memory, gpus) in NODE_SHAPES.items():
        mine = [j for j, r in zip(jobs, roles) if r == role]
        arrival = np.array([j.arrival for j in mine])
        end = np.array([math.inf if j.departure is None else j.departure for j in mine])
        amounts = np.array([[j.cpu * j.tasks, j.memory * j.tasks, j.gpu * j.tasks] for j in mine], dtype=float)
        peak = peak_demand(arrival, end, amounts.reshape(-1, 3))
        need = peak[:2] / np.array([cpu, memory]) if not gpus else peak / np.array([cpu, memory, gpus])
        count = max(1, math.ceil(float(need.max()) / fill))
        for _ in range(count):
            i = len(machines)
            machines.append(TraceMachine(f"{role.lower()}-{i:05d}", cpu, memory, gpus,
                                         attributes=rack_attributes(i, role=role.lower())))
        words.append(f"{count} {role} nodes of {cpu // 1000} vCPU, {memory // GiB} GiB"
                     + (f", {gpus} GPUs" if gpus else "")
                     + f" (peak concurrent request {peak[0] / 1000:,.0f} vCPU, {peak[1] / GiB:,.0f} GiB"
                     + (f", {peak[2]:,.0f} GPUs" if gpus else "") + ")")
    return machines, (f"synthesised {'; '.join(words)}; each pool sized so that its peak is {fill:.0%} of it. "
                      "Node shapes are assumed from the instance shapes (the largest CN instance is 192 vCPU / "
                      "1000 GiB; eight 12-vCPU/120-GiB one-GPU HN instances fill an HN node).")
