"""openb (Alibaba GPU cluster, v2023) replayed in time: pods arrive at creation_time, leave at deletion_time.

In: the openb csv folder (or one pod list in it). The node list gives the machines; each pod
becomes one job of one task. Resources are mapped exactly as the FGD replay maps them, by
:func:`corral.sim.openb.loader.load_pods` (the k8s non-zero CPU request, gpu_milli clipped to
0..1000, ``gpu_spec`` ``A|B`` = allowed models), so both experiments see the same pods.
"""

from __future__ import annotations

from pathlib import Path

from corral.model.resources import GPU_MILLI_WHOLE
from corral.sim.openb.loader import MiB, NODE_FILE, POD_PREFIX, WorkloadError, load_pods
from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.common import clean_name, csv_rows, default_traces_dir, deletion_time, existing, is_empty, number

ALL_NODE_FILE = "openb_node_list_all_node.csv"
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos")
TIME_COLUMNS = ("creation_time", "deletion_time")
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
USER = "openb"  # the trace names no users

# qos -> (priority, appclass). Guaranteed is the k8s class whose requests equal its limits, the most
# protected; LS are Alibaba's latency-sensitive online pods (inference); Burstable pods may exceed
# their request and mostly run to completion (training); BE pods are best effort, evicted first.
QOS = {
    "Guaranteed": (10, "latency-sensitive"),
    "LS": (9, "latency-sensitive"),
    "Burstable": (5, "batch"),
    "BE": (0, "batch"),
}


def default_dir() -> Path:
    return default_traces_dir() / "alibaba-gpu-v2023" / "csv"


def load_openb(path: str | Path | None = None, *, seed: int = 0, workload: str = "default",
               nodes: str = "gpu") -> Trace:
    """The pods of ``workload`` replayed in time on the ``gpu`` (1,213) or ``all`` (1,523) nodes.

    ``path`` is the csv folder or one ``openb_pod_list_<workload>.csv`` in it (then ``workload``
    is ignored). Deterministic: ``seed`` is unused.
    """
    folder, pod_file = _locate(Path(path) if path is not None else default_dir(), workload)
    if nodes not in ("gpu", "all"):
        raise TraceError(folder, 0, f"option nodes: expected 'gpu' or 'all', got {nodes!r}")
    machines = read_nodes(folder / (NODE_FILE if nodes == "gpu" else ALL_NODE_FILE))
    times = _read_times(pod_file)
    try:  # the resource mapping is the FGD replay's own; _read_times has checked every field it parses
        pods = load_pods(folder, pod_file.name[len(POD_PREFIX):-len(".csv")])
    except WorkloadError as e:
        raise TraceError(pod_file, 0, str(e)) from None
    start = min((t[0] for t in times.values()), default=0.0)
    jobs = []
    for pod in pods:
        created, deleted, qos = times[pod.name]
        priority, appclass = QOS[qos]
        jobs.append(TraceJob(
            name=clean_name(pod.name), user=USER, arrival=created - start, cpu=pod.cpu,
            memory=pod.memory_mib * MiB, departure=None if deleted is None else deleted - start,
            gpu=pod.num_gpu, gpu_milli=pod.gpu_milli or GPU_MILLI_WHOLE, gpu_models=pod.models,
            priority=priority, appclass=appclass,
        ))
    notes = [
        f"openb pods replayed in time: each pod arrives at its creation_time and leaves at its deletion_time "
        f"(times from the earliest creation, {start:g} s), whatever its pod_phase in the real cluster "
        f"(pods that stayed Pending or Failed there are submitted too).",
        "qos mapped to priority: Guaranteed 10 and LS 9 (production, latency-sensitive), "
        "Burstable 5 (batch), BE 0 (best-effort).",
        f"The trace names no users: every pod belongs to user {USER!r}.",
        "The trace records requests only: no usage is given.",
    ]
    return Trace("openb", machines, sort_jobs(jobs), source=str(pod_file), notes=notes)


def _locate(path: Path, workload: str) -> tuple[Path, Path]:
    if path.is_dir():
        short = workload.removeprefix(POD_PREFIX).removesuffix(".csv")
        pod_file = path / f"{POD_PREFIX}{short}.csv"
        return path, existing(pod_file, f"openb pod list for workload {workload!r}")
    existing(path, "openb pod list")
    if not (path.name.startswith(POD_PREFIX) and path.name.endswith(".csv")):
        raise TraceError(path, 0, f"expected an openb pod list named {POD_PREFIX}<workload>.csv")
    return path.parent, path


def read_nodes(path: Path) -> list[TraceMachine]:
    machines, seen = [], set()
    for line, row in csv_rows(path, NODE_COLUMNS):
        name = clean_name(row["sn"])
        if name in seen:
            raise TraceError(path, line, f"column 'sn': expected a unique node name, {row['sn']!r} repeats")
        seen.add(name)
        cpu = number(path, line, row, "cpu_milli", "millicores", integer=True, minimum=1)
        memory = number(path, line, row, "memory_mib", "MiB", integer=True, minimum=1)
        gpu = number(path, line, row, "gpu", "GPUs", integer=True)
        model = "" if is_empty(row["model"]) else row["model"].strip()
        machines.append(TraceMachine(name, cpu, memory * MiB, gpu, model))
    return machines


def _read_times(path: Path) -> dict[str, tuple[float, float | None, str]]:
    """name -> (creation, deletion or None, qos), after checking every field load_pods will parse."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    if not all(c in header for c in TIME_COLUMNS):
        raise TraceError(path, 1, "expected creation_time and deletion_time columns: time replay needs them, and "
                                  "only the pod lists with all 11 columns (default, cpuNNN, gpushareNN, gpuspecNN) "
                                  "have them; the multigpuNN lists have only the first 5")
    out: dict[str, tuple[float, float | None, str]] = {}
    for line, row in csv_rows(path, POD_COLUMNS + TIME_COLUMNS):
        for column, what in (("cpu_milli", "millicores"), ("memory_mib", "MiB"), ("num_gpu", "GPUs"),
                             ("gpu_milli", "milli-GPU per GPU")):
            number(path, line, row, column, what, integer=True)
        if row["name"] in out:
            raise TraceError(path, line, f"column 'name': expected a unique pod name, {row['name']!r} repeats")
        if row["qos"] not in QOS:
            raise TraceError(path, line, f"column 'qos': expected one of {', '.join(QOS)}, got {row['qos']!r}")
        created = number(path, line, row, "creation_time", "seconds")
        deleted = deletion_time(path, line, row, created, "seconds")
        out[row["name"]] = (created, deleted, row["qos"])
    return out
