"""Resource quantities and vectors.

Units, everywhere inside corral: cpu in millicores, memory and disk in bytes,
GPUs as a whole count plus a per-GPU share in milli-GPU (``gpu_milli``; 1000
means the whole GPU). A task with ``gpu=1, gpu_milli=300`` shares one GPU
with others; ``gpu=4`` (``gpu_milli`` 1000) takes four whole GPUs.

The scheduler works on the dense vector ``(cpu, memory, disk, gpu)`` where
the GPU entry is the total milli-GPU (``gpu * gpu_milli``); which GPUs of a
machine hold it is tracked per GPU by the cell view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Quantity parsing lives in quantity.py; GPU_MILLI_WHOLE is re-exported for this module's many readers.
from corral.model.quantity import GPU_MILLI_WHOLE, QuantityError  # noqa: F401

DIMS: tuple[str, ...] = ("cpu", "memory", "disk", "gpu")
CPU, MEMORY, DISK, GPU = range(len(DIMS))


def check_port_range(ports: tuple[int, ...]) -> tuple[int, ...]:
    """Host ports must be in 1..65535; raises ValueError naming the bad one."""
    for port in ports:
        if not 1 <= port <= 65535:
            raise ValueError(f"expected ports in 1..65535, got {port}")
    return ports


def format_bytes(n: int | float) -> str:
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{int(n)}B"


def format_cpu(milli: int | float) -> str:
    return f"{milli / 1000:g}" if milli % 1000 == 0 else f"{int(milli)}m"


@dataclass(frozen=True, slots=True)
class Resources:
    """What one task asks for (or one machine has).

    ``gpu`` whole GPUs of which each is used at ``gpu_milli`` milli-GPU;
    ``gpu_models`` restricts the task to machines whose GPU model is one of
    them (empty: any). ``ports`` are host ports the task needs exclusively;
    ``dynamic_ports`` more are chosen by the scheduler from the free ports of
    the machine it places the task on.
    """

    cpu: int = 0
    memory: int = 0
    disk: int = 0
    gpu: int = 0
    gpu_milli: int = GPU_MILLI_WHOLE
    gpu_models: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    dynamic_ports: int = 0  # how many more ports the scheduler picks on the machine ("any free")

    def __post_init__(self) -> None:
        for name in ("cpu", "memory", "disk", "gpu"):
            if getattr(self, name) < 0:
                raise QuantityError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.gpu_milli <= GPU_MILLI_WHOLE:
            raise QuantityError(f"gpu_milli must be in 1..1000, got {self.gpu_milli}")

    @property
    def needs_ports(self) -> bool:
        return bool(self.ports or self.dynamic_ports)

    @property
    def gpu_total_milli(self) -> int:
        return self.gpu * self.gpu_milli if self.gpu else 0

    def vector(self) -> np.ndarray:
        """The dense ``(cpu, memory, disk, gpu-milli)`` vector the cell view uses."""
        return np.array([self.cpu, self.memory, self.disk, self.gpu_total_milli], dtype=np.int64)

    def describe(self) -> str:
        parts = [f"cpu={format_cpu(self.cpu)}", f"memory={format_bytes(self.memory)}"]
        if self.disk:
            parts.append(f"disk={format_bytes(self.disk)}")
        if self.gpu:
            share = f"x{self.gpu_milli}m" if self.gpu_milli < GPU_MILLI_WHOLE else ""
            parts.append(f"gpu={self.gpu}{share}")
        if self.gpu_models:
            parts.append(f"gpu_model={'|'.join(self.gpu_models)}")
        if self.ports or self.dynamic_ports:
            words = [*map(str, self.ports), *(["any"] * self.dynamic_ports)]
            parts.append(f"ports={','.join(words)}")
        return " ".join(parts)
