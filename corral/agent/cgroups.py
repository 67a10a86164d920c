"""Control-group file plumbing: find the mounts, read and write control files.

Knows nothing about tasks. ``discover()`` reads ``/proc/self/mounts`` and
says where cgroup v2 is mounted (and which controllers it offers) and where
each v1 controller is mounted. A v2 mount without the memory and cpu
controllers (a "hybrid" host, where v1 holds them) is not usable for limits.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "devices")


@dataclass(frozen=True)
class Mounts:
    v2: Path | None = None
    v2_controllers: frozenset[str] = frozenset()
    v1: dict[str, Path] = field(default_factory=dict)  # controller -> mount point


def discover(mounts_text: str | None = None) -> Mounts:
    """Parse a mounts table (default: this process's) into cgroup mount points."""
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/self/mounts").read_text()
        except OSError:
            return Mounts()
    v2: Path | None = None
    v1: dict[str, Path] = {}
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        mount_point, fstype, options = Path(parts[1].replace("\\040", " ")), parts[2], parts[3].split(",")
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup":
            for controller in V1_CONTROLLERS:
                if controller in options and controller not in v1:
                    v1[controller] = mount_point
    controllers: frozenset[str] = frozenset()
    if v2 is not None:
        try:
            controllers = frozenset((v2 / "cgroup.controllers").read_text().split())
        except OSError:
            controllers = frozenset()
    return Mounts(v2=v2, v2_controllers=controllers, v1=v1)


def write(path: Path, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def read(path: Path) -> str:
    with open(path) as f:
        return f.read()


def read_int(path: Path) -> int | None:
    try:
        return int(read(path).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_keyed(path: Path) -> dict[str, int]:
    """Read a ``key value`` per line file (memory.stat, cpu.stat, memory.events)."""
    out: dict[str, int] = {}
    try:
        text = read(path)
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def can_create_children(parent: Path) -> bool:
    """True when we may make (and remove) a child cgroup under ``parent``."""
    probe = parent / f"corral-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        probe.rmdir()
    except OSError:
        pass
    return True


def procs(directory: Path) -> list[int]:
    try:
        return [int(p) for p in read(directory / "cgroup.procs").split()]
    except (OSError, ValueError):
        return []


def rmdir(directory: Path, timeout_s: float = 2.0) -> bool:
    """Remove one (leaf) cgroup directory, waiting for exiting processes to leave it."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            directory.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:  # EBUSY: members still exiting
                return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def rmtree(directory: Path, timeout_s: float = 2.0) -> bool:
    """Remove a cgroup subtree bottom-up (cgroup directories hold only control files)."""
    if not directory.is_dir():
        return True
    ok = True
    for child in sorted((p for p in directory.iterdir() if p.is_dir()), reverse=True):
        ok = rmtree(child, timeout_s) and ok
    return rmdir(directory, timeout_s) and ok
