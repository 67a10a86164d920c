"""This machine's NVIDIA GPUs: NVML through ``nvidia-ml-py`` where it is installed, else
``nvidia-smi``; no driver, no tool, or no GPU is an empty list, never an error.

``visible_devices(launch)`` is the environment a task gets for the GPUs the master assigned it
(``TaskLaunch.gpus``): ``CUDA_VISIBLE_DEVICES`` and ``NVIDIA_VISIBLE_DEVICES`` name exactly those
indices, and a task that asked for no GPU gets none visible. They are set after the job's own
env, so a job cannot widen them. ``gpu_fence`` is the device fence that makes it so for a task
that ignores them (``devices.py``; enforced by the isolation where a devices controller exists).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from corral.agent.devices import DeviceFence, char_minors

log = logging.getLogger(__name__)

SMI_QUERY = ["--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]


@dataclass(frozen=True)
class Gpu:
    index: int
    model: str
    memory_bytes: int


def detect_gpus(nvml: Any = None, smi: str | None = None) -> list[Gpu]:
    """The GPUs of this machine, by index. ``nvml`` (the ``pynvml`` module) and ``smi`` (the path
    of ``nvidia-smi``) are found when not given; tests hand fakes."""
    if nvml is None:
        try:
            import pynvml as nvml  # nvidia-ml-py: optional
        except ImportError:
            nvml = None
    if nvml is not None:
        try:
            return _from_nvml(nvml)
        except Exception as e:  # NVMLError (no driver, no device) and the like: try the tool
            log.info("NVML found no GPUs (%s); trying nvidia-smi", e)
    smi = smi or shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        done = subprocess.run([smi, *SMI_QUERY], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        log.info("nvidia-smi did not answer (%s): no GPUs", e)
        return []
    if done.returncode != 0:
        log.info("nvidia-smi exited %s: no GPUs", done.returncode)
        return []
    return _from_smi(done.stdout)


def _from_nvml(nvml: Any) -> list[Gpu]:
    nvml.nvmlInit()
    try:
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            name = nvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            gpus.append(Gpu(i, name, int(nvml.nvmlDeviceGetMemoryInfo(handle).total)))
        return gpus
    finally:
        nvml.nvmlShutdown()


def _from_smi(text: str) -> list[Gpu]:
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        try:
            memory = int(float(parts[2]) * 2**20)  # MiB with nounits
        except ValueError:
            memory = 0
        gpus.append(Gpu(int(parts[0]), parts[1], memory))
    return sorted(gpus, key=lambda g: g.index)


def visible_devices(gpus: tuple[int, ...], requested: int) -> dict[str, str]:
    """The environment naming a task's GPUs: its assigned indices, none for a task that asked for
    none; nothing for a task that asked for some but whose indices are not known (an older master)."""
    if not gpus and requested:
        return {}
    shown = ",".join(str(g) for g in gpus)
    return {"CUDA_VISIBLE_DEVICES": shown, "NVIDIA_VISIBLE_DEVICES": shown or "none"}


NVIDIA_MAJOR = 195  # devbpf.NVIDIA_MAJOR too
NVIDIA_CONTROL_MINORS = frozenset({254, 255})  # /dev/nvidia-modeset, /dev/nvidiactl


def gpu_fence(gpus: tuple[int, ...], requested: int, machine_gpus: int, dev: str = "/dev") -> DeviceFence | None:
    """The devices a task may open on a machine of ``machine_gpus`` GPUs: the nodes of its assigned
    GPUs (GPU index N is ``/dev/nvidiaN``, minor N) and, when it has any, the control nodes; no
    other NVIDIA device. None (no fence) on a machine without GPUs, or for a task that asked for
    GPUs whose indices are not known (an older master), as for ``visible_devices``."""
    if machine_gpus <= 0 or (requested and not gpus):
        return None
    known = char_minors(NVIDIA_MAJOR, dev) | frozenset(range(machine_gpus)) | NVIDIA_CONTROL_MINORS
    allowed = frozenset(gpus) | (NVIDIA_CONTROL_MINORS if gpus else frozenset())
    return DeviceFence(NVIDIA_MAJOR, allowed, known)
