"""Reading the openb node and pod lists into corral machines and task requests.

In: the folder of the openb CSVs (``openb_node_list_gpu_node.csv`` and
``openb_pod_list_<workload>.csv``). Out: :class:`~corral.model.machine.Machine`
per node and one :class:`OpenbPod` per pod, whose ``request`` is the corral
:class:`~corral.sched.request.TaskRequest` (one object per equivalence class,
shared by all pods of the class). Units follow PROTOCOL §2: cpu milli-cores,
memory MiB (converted to bytes), ``gpu_milli`` per GPU clipped to 0..1000,
``gpu_spec`` ``"A|B"`` = the GPU models allowed. Never writes anything.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from corral.model.machine import Machine
from corral.model.resources import GPU_MILLI_WHOLE, Resources
from corral.sched.request import TaskRequest

MiB = 2**20
NODE_FILE = "openb_node_list_gpu_node.csv"
POD_PREFIX = "openb_pod_list_"

# The 17 workloads of the paper's matrix (PROTOCOL §1) and the 7 that exist but were not run.
PAPER_WORKLOADS: tuple[str, ...] = (
    "default", "cpu050", "cpu100", "cpu200", "cpu250", "gpushare40", "gpushare60", "gpushare80", "gpushare100",
    "gpuspec10", "gpuspec20", "gpuspec25", "gpuspec33", "multigpu20", "multigpu30", "multigpu40", "multigpu50",
)
EXTRA_WORKLOADS: tuple[str, ...] = ("cpu0", "cpu037", "cpu072", "cpu235", "cpu300", "gpushare20", "gpuspec05")


def default_trace_dir() -> Path:
    """``../shared/traces/alibaba-gpu-v2023/csv`` beside the repository root."""
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "traces" / "alibaba-gpu-v2023" / "csv"


class WorkloadError(ValueError):
    """A workload name or trace folder that cannot be read; the message says what exists."""


@dataclass(frozen=True, slots=True)
class OpenbPod:
    name: str
    cpu: int  # milli-cores
    memory_mib: int
    num_gpu: int
    gpu_milli: int  # per GPU, 0 for CPU-only pods
    models: tuple[str, ...]  # allowed GPU models, empty = any
    request: TaskRequest

    @property
    def gpu_demand(self) -> int:
        """Total milli-GPU the pod asks for (``num_gpu * gpu_milli``)."""
        return self.num_gpu * self.gpu_milli

    @property
    def key(self) -> tuple[int, int, int, str]:
        """The protocol's pod resource tuple (MilliCpu, MilliGpu, GpuNumber, GpuType)."""
        return (self.cpu, self.gpu_milli, self.num_gpu, "|".join(self.models))


def workload_names(trace_dir: Path) -> list[str]:
    return sorted(p.name[len(POD_PREFIX):-4] for p in Path(trace_dir).glob(f"{POD_PREFIX}*.csv"))


def normalise_workload(name: str, trace_dir: Path) -> str:
    """``openb_pod_list_default`` or ``default`` -> ``default``; raises WorkloadError if absent."""
    short = name[len(POD_PREFIX):] if name.startswith(POD_PREFIX) else name
    if short.endswith(".csv"):
        short = short[:-4]
    known = workload_names(trace_dir)
    if not known:
        raise WorkloadError(f"no {POD_PREFIX}*.csv files in {trace_dir}")
    if short not in known:
        raise WorkloadError(f"unknown workload {name!r}: expected one of {', '.join(known)}")
    return short


def load_nodes(trace_dir: Path) -> list[Machine]:
    path = Path(trace_dir) / NODE_FILE
    if not path.exists():
        raise WorkloadError(f"node list {path} not found")
    with open(path, newline="") as f:
        return [
            Machine(
                name=row["sn"],
                capacity=Resources(cpu=int(row["cpu_milli"]), memory=int(row["memory_mib"]) * MiB,
                                   gpu=int(row["gpu"])),
                gpu_model=row["model"].strip(),
            )
            for row in csv.DictReader(f)
        ]


def _models(spec: str) -> tuple[str, ...]:
    return tuple(part for part in spec.split("|") if part)


def load_pods(trace_dir: Path, workload: str = "default") -> list[OpenbPod]:
    """The pods of one workload, sorted by name (PROTOCOL §3.1)."""
    short = normalise_workload(workload, trace_dir)
    requests: dict[tuple, TaskRequest] = {}
    pods = []
    with open(Path(trace_dir) / f"{POD_PREFIX}{short}.csv", newline="") as f:
        for row in csv.DictReader(f):
            cpu = int(row["cpu_milli"]) or 100  # k8s "non-zero" request
            memory = int(row["memory_mib"])
            num_gpu = int(row["num_gpu"])
            milli = min(max(int(row["gpu_milli"]), 0), GPU_MILLI_WHOLE) if num_gpu else 0
            if num_gpu and milli == 0:
                num_gpu = 0  # a GPU count without a share asks for no GPU (PROTOCOL §5 filter skip)
            models = _models(row.get("gpu_spec") or "") if num_gpu else ()
            key = (cpu, memory, num_gpu, milli, models)
            req = requests.get(key)
            if req is None:
                resources = Resources(cpu=cpu, memory=memory * MiB, gpu=num_gpu,
                                      gpu_milli=milli or GPU_MILLI_WHOLE, gpu_models=models)
                req = requests[key] = TaskRequest(resources, priority=0)
            pods.append(OpenbPod(row["name"], cpu, memory, num_gpu, milli, models, req))
    pods.sort(key=lambda p: p.name)
    return pods
