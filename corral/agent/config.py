"""The agent's settings, and reading ``--capacity`` / ``--attributes`` from the command line.

Capacity is in corral units (``{"cpu": millicores, "memory": bytes, "disk": bytes,
"gpu": count}``); ``detect_capacity()`` asks psutil when none is given.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from corral.agent.taskuser import RUN_AS
from corral.model.quantity import RESOURCE_KEYS, parse_bytes, parse_cpu, parse_resource_mapping

CAPACITY_KEYS = RESOURCE_KEYS
_ATTR_KEY = re.compile(r"^[A-Za-z0-9_.\-/]+$")


class ConfigError(ValueError):
    """A bad setting; the message names it and says what was expected."""


@dataclass
class AgentConfig:
    name: str
    master: str
    token: str
    state_dir: Path
    port: int = 0  # 0: any free port
    host: str = "127.0.0.1"  # where the agent's API listens (--listen)
    advertise: str = ""  # the URL the masters use for it (--advertise); default http://host:port
    tls: Any = None  # corral.tls.TlsFiles: serve HTTPS to the master only, present this machine's certificate
    capacity: dict[str, int] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    gpu_model: str = ""
    cgroup_root: str = ""  # directory made under each cgroup controller mount; default corral-<name>
    isolation: str | None = None  # force "cgroup-v2" | "cgroup-v1" | "rlimit"
    kill_grace_s: float = 10.0
    tick_s: float = 0.1
    usage_interval_s: float = 1.0
    memory_pressure_threshold: float = 0.95  # fraction of machine memory in use that triggers eviction
    log_max_bytes: int = 10 * 2**20
    log_keep: int = 3
    register_backoff_s: float = 0.5
    register_backoff_max_s: float = 30.0
    run_as: str = "auto"  # who tasks run as: auto | per-user | shared | agent (corral.agent.taskuser)
    task_user: str = "corral-task"  # the cell's unprivileged task account (created when missing)
    colocation: bool = True  # throttle batch tasks while latency-sensitive ones need the CPU (colocation.py)
    colocation_interval_s: float = 0.2

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$", self.name):
            raise ConfigError(f"name: expected 1-63 letters, digits, '.', '_' or '-', got {self.name!r}")
        masters = [m.strip() for m in self.master.split(",") if m.strip()]
        if not masters or not all(m.startswith(("http://", "https://")) for m in masters):
            raise ConfigError(f"master: expected an http:// URL (or several, comma-separated), got {self.master!r}")
        if self.advertise and not self.advertise.startswith(("http://", "https://")):
            raise ConfigError(f"advertise: expected a URL like http://10.0.0.5:7200, got {self.advertise!r}")
        if not self.token:
            raise ConfigError("token: an agent token is required (CORRAL_AGENT_TOKEN, --token-file or --token)")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: expected 0..65535, got {self.port}")
        if not 0 < self.memory_pressure_threshold <= 1:
            raise ConfigError(f"memory_pressure_threshold: expected a fraction in (0, 1], got {self.memory_pressure_threshold}")
        if self.run_as not in RUN_AS:
            raise ConfigError(f"run_as: expected one of {', '.join(RUN_AS)}, got {self.run_as!r}")
        if self.run_as in ("per-user", "shared") and os.geteuid() != 0:
            raise ConfigError(f"run_as: {self.run_as} needs an agent running as root (it changes the tasks' uids)")
        if not re.match(r"^[a-z_][a-z0-9_-]{0,30}$", self.task_user):
            raise ConfigError(f"task_user: expected a system account name like corral-task, got {self.task_user!r}")
        if not 0.01 <= self.colocation_interval_s <= 60:
            raise ConfigError(f"colocation_interval_s: expected 0.01..60 seconds, got {self.colocation_interval_s}")
        if self.isolation not in (None, "cgroup-v2", "cgroup-v1", "rlimit"):
            raise ConfigError(f"isolation: expected cgroup-v2, cgroup-v1 or rlimit, got {self.isolation!r}")
        self.state_dir = Path(self.state_dir)
        self.cgroup_root = self.cgroup_root or f"corral-{self.name}"
        if "/" in self.cgroup_root or self.cgroup_root in (".", ".."):
            raise ConfigError(f"cgroup_root: expected one directory name, got {self.cgroup_root!r}")
        if not self.capacity:
            from corral.agent.gpus import detect_gpus

            gpus = detect_gpus()  # none (no driver, no tool): 0
            self.capacity = detect_capacity(self.state_dir, len(gpus))
            self.gpu_model = self.gpu_model or (gpus[0].model if gpus else "")


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """``"a=1,b=2"`` -> ``{"a": "1", "b": "2"}``; an empty text is an empty mapping."""
    out: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(f"{what}: expected key=value pairs separated by commas, got {item!r}")
        out[key] = value
    return out


def parse_capacity(text: str) -> dict[str, int]:
    """``"cpu=8,memory=16Gi"`` -> ``{"cpu": 8000, "memory": 17179869184, "disk": 0, "gpu": 0}``;
    missing dimensions are detected. Values are read as people type them (a number of cpu is
    cores, gpu a whole count); bad ones raise :class:`ConfigError` naming each."""
    capacity, errors = parse_resource_mapping(parse_pairs(text, "capacity"), "capacity")
    if errors:
        raise ConfigError("; ".join(f"{field}: {message}" for field, message in errors))
    gpus = 0
    if "gpu" not in capacity:
        from corral.agent.gpus import detect_gpus

        gpus = len(detect_gpus())
    detected = detect_capacity(gpus=gpus)
    return {key: capacity.get(key, detected[key]) for key in CAPACITY_KEYS}


def parse_attributes(text: str) -> dict[str, str]:
    attributes = parse_pairs(text, "attributes")
    for key in attributes:
        if not _ATTR_KEY.match(key):
            raise ConfigError(f"attributes.{key}: expected letters, digits, '_', '.', '-' or '/'")
    return attributes


def detect_capacity(state_dir: Path | None = None, gpus: int = 0) -> dict[str, int]:
    """This machine's cpu (millicores, from the CPUs this process may use), memory and free disk;
    ``gpus`` is the count corral.agent.gpus detected."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = psutil.cpu_count() or 1
    disk = 0
    probe = Path(state_dir) if state_dir is not None else Path("/")
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        disk = shutil.disk_usage(probe).free
    except OSError:
        disk = 0
    return {
        "cpu": parse_cpu(cpus),
        "memory": parse_bytes(int(psutil.virtual_memory().total)),
        "disk": int(disk),
        "gpu": int(gpus),
    }
