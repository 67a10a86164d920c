"""Per-task isolation: a control group per task (v2 or v1) or, failing both, rlimits.

``detect(root_name)`` picks the first backend that works on this machine:
``cgroup-v2`` when the v2 mount offers the memory and cpu controllers and we
may create cgroups there, else ``cgroup-v1`` when the v1 memory hierarchy is
writable, else ``rlimit`` (memory via ``RLIMIT_AS`` only).

Every backend has the same life cycle::

    iso.setup()                           # create <mount>/<root_name> (idempotent)
    box = iso.create(key, limits)         # per-task cgroup with limits written
    Popen(..., preexec_fn=iso.preexec(box))  # the child joins it before exec
    iso.usage(box), iso.oom_kills(box)
    iso.kill(box); iso.remove(box)        # SIGKILL every member, rmdir
    iso.teardown()                        # remove <root_name> and anything left in it

The child joins its cgroup in ``preexec_fn`` (between fork and exec), so no
process of the task ever runs outside it. The preexec function only makes
raw ``os`` calls on precomputed values, which is safe after fork.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from corral.agent import cgroups, devbpf, opportunistic
from corral.agent.attach_warmer import AttachWarmer, own_tasks_file
from corral.agent.devices import DeviceFence
from corral.agent.launch import TaskLaunch
from corral.model.job import AppClass

CGROUP_V2, CGROUP_V1, RLIMIT = "cgroup-v2", "cgroup-v1", "rlimit"
ISOLATIONS = (CGROUP_V2, CGROUP_V1, RLIMIT)

CFS_PERIOD_US = 100_000
# Under contention a latency-sensitive task gets this many times the CPU
# weight of a batch task of the same size.
LS_WEIGHT_FACTOR = 10


@dataclass(frozen=True)
class Limits:
    memory_bytes: int  # 0: no limit
    cpu_quota_us: int | None  # per CFS_PERIOD_US; None: no cap
    cpu_shares: int  # cgroup v1, 2..262144 (1024 = one core's worth)
    cpu_weight: int  # cgroup v2, 1..10000 (100 = one core's worth)
    devices: DeviceFence | None = None  # the devices it may open (GPUs); None: no fence


def limits_for(launch: TaskLaunch) -> Limits:
    """The limits a task gets: its memory limit, a CPU cap at its cpu limit, a CPU weight by appclass
    (the lowest of all for an opportunistic task: corral/agent/opportunistic.py)."""
    return opportunistic.limits(limits_of(launch.resources.cpu, launch.resources.memory, launch.appclass),
                                launch.opportunistic)


def limits_of(cpu: int, memory: int, appclass: AppClass = AppClass.BATCH) -> Limits:
    """Limits for ``cpu`` millicores and ``memory`` bytes (an alloc's parent sandbox uses these too)."""
    base = max(cpu, 10)
    factor = LS_WEIGHT_FACTOR if appclass == AppClass.LATENCY_SENSITIVE else 1
    shares = min(max(base * 1024 // 1000 * factor, 2), 262_144)
    weight = min(max(base * 100 // 1000 * factor, 1), 10_000)
    quota = max(cpu * CFS_PERIOD_US // 1000, 1000) if cpu > 0 else None
    return Limits(memory_bytes=memory, cpu_quota_us=quota, cpu_shares=shares, cpu_weight=weight)


@dataclass
class Sandbox:
    """One task attempt's isolation: its cgroup directories (none under rlimit)."""

    key: str
    limits: Limits
    dirs: dict[str, Path] = field(default_factory=dict)  # role ("memory", "cpu", "cpuacct", "unified") -> dir


class IsolationError(OSError):
    pass


# Joins each cgroup named before "--", then becomes the command after it (exit 126 if a join fails).
JOIN_SCRIPT = 'for f; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 126; shift; done; shift; exec "$@"'


class Isolation:
    name = RLIMIT
    # How a sandbox's Limits.devices is enforced ("devices cgroup", "BPF device program"), or None:
    # then it is not, and device_note says why.
    device_control: str | None = None
    device_note = "no devices controller under rlimit"

    def setup(self) -> None:
        pass

    def teardown(self) -> None:
        pass

    def create(self, key: str, limits: Limits) -> Sandbox:
        return Sandbox(key, limits)

    def command(self, box: Sandbox, argv: list[str]) -> tuple[list[str], Callable[[], None] | None]:
        """What to execute for ``argv`` in ``box``, and the function to run in the child before it
        (None: nothing, so the process is spawned without a full fork of the agent)."""
        return argv, self.preexec(box)

    def preexec(self, box: Sandbox) -> Callable[[], None]:
        memory = box.limits.memory_bytes

        def join() -> None:
            if memory > 0:
                resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

        return join

    def members(self, box: Sandbox) -> list[int]:
        return []

    def kill(self, box: Sandbox) -> None:
        """SIGKILL every process in the sandbox (nothing to do without a cgroup)."""
        for _ in range(5):
            pids = self.members(box)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def remove(self, box: Sandbox) -> bool:
        return True

    def usage(self, box: Sandbox) -> tuple[float | None, int | None]:
        """(cumulative cpu seconds, memory bytes in use) or None where this backend cannot tell."""
        return None, None

    def oom_kills(self, box: Sandbox) -> int:
        return 0

    def describe(self) -> str:
        return self.name


class _CgroupIsolation(Isolation):
    def __init__(self, roots: dict[str, Path]):
        self.roots = roots  # role -> <mount>/<root_name>

    def describe(self) -> str:
        fence = f"devices fenced by a {self.device_control}" if self.device_control else f"devices not fenced ({self.device_note})"
        return f"{self.name} at {', '.join(sorted({str(p) for p in self.roots.values()}))}; {fence}"

    def setup(self) -> None:
        for root in set(self.roots.values()):
            root.mkdir(exist_ok=True)

    def teardown(self) -> None:
        for root in set(self.roots.values()):
            for child in (p for p in root.iterdir() if p.is_dir()) if root.is_dir() else ():
                for pid in cgroups.procs(child):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            cgroups.rmtree(root)

    def _dirs(self, key: str) -> dict[str, Path]:
        return {role: root / key for role, root in self.roots.items()}

    def create(self, key: str, limits: Limits) -> Sandbox:
        box = Sandbox(key, limits, self._dirs(key))
        try:
            for directory in set(box.dirs.values()):
                directory.mkdir(exist_ok=True)
            self._write_limits(box)
        except OSError:
            self.remove(box)
            raise
        return box

    def _write_limits(self, box: Sandbox) -> None:
        raise NotImplementedError

    def set_limits(self, box: Sandbox, limits: Limits) -> None:
        """New limits for a live sandbox (an alloc whose reservation changed)."""
        self._write_limits(Sandbox(box.key, limits, box.dirs))
        box.limits = limits  # only once written: a failed write is tried again by the next launch

    def command(self, box: Sandbox, argv: list[str]) -> tuple[list[str], Callable[[], None] | None]:
        # A shell joins the task's cgroups and execs the task in its place (the same pid): with no
        # Python to run in the child, the agent spawns without a full fork of itself (~0.3 ms, not
        # ~10 ms with a large agent), so the task starts before it could fork out of its cgroup.
        targets = [str(d / "cgroup.procs") for d in sorted(set(box.dirs.values()))]
        return ["/bin/sh", "-c", JOIN_SCRIPT, "corral-join", *targets, "--", *argv], None

    def preexec(self, box: Sandbox) -> Callable[[], None]:
        targets = [str(d / "cgroup.procs").encode() for d in sorted(set(box.dirs.values()))]

        def join() -> None:
            pid = str(os.getpid()).encode()
            for target in targets:
                fd = os.open(target, os.O_WRONLY)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)

        return join

    def members(self, box: Sandbox) -> list[int]:
        pids: set[int] = set()
        for directory in set(box.dirs.values()):
            pids.update(cgroups.procs(directory))
        return sorted(pids)

    def remove(self, box: Sandbox) -> bool:
        self.kill(box)
        ok = True
        for directory in set(box.dirs.values()):
            ok = cgroups.rmdir(directory) and ok
        return ok


class CgroupV2(_CgroupIsolation):
    name = CGROUP_V2

    def __init__(self, root: Path, devices: bool = False):
        super().__init__({"unified": root})
        self.fence_devices = devices  # attach a BPF device program to each fenced sandbox
        self.device_note = "not asked (no GPUs)"

    def setup(self) -> None:
        # Limits on a child need the controllers enabled in every parent's subtree_control.
        root = self.roots["unified"]
        self._enable(root.parent)
        root.mkdir(exist_ok=True)
        self._enable(root)
        if self.fence_devices and self.device_control is None:
            try:  # may this agent load device programs at all? (CAP_BPF, a kernel with cgroup BPF)
                os.close(devbpf.load(devbpf.NVIDIA_MAJOR, ()))
                self.device_control = "BPF device program"
            except OSError as e:
                self.device_note = str(e)

    @staticmethod
    def _enable(parent: Path) -> None:
        control = parent / "cgroup.subtree_control"
        enabled = set(cgroups.read(control).split()) if control.exists() else set()
        missing = [c for c in ("memory", "cpu") if c not in enabled]
        if missing:
            cgroups.write(control, " ".join(f"+{c}" for c in missing))

    def _write_limits(self, box: Sandbox) -> None:
        d, lim = box.dirs["unified"], box.limits
        if lim.memory_bytes > 0:
            cgroups.write(d / "memory.max", lim.memory_bytes)
            if (d / "memory.swap.max").exists():
                cgroups.write(d / "memory.swap.max", 0)
        cgroups.write(d / "cpu.weight", lim.cpu_weight)
        quota = "max" if lim.cpu_quota_us is None else str(lim.cpu_quota_us)
        cgroups.write(d / "cpu.max", f"{quota} {CFS_PERIOD_US}")
        if lim.devices is not None and self.device_control is not None:
            devbpf.attach_fence(d, lim.devices.major, lim.devices.allowed)

    def kill(self, box: Sandbox) -> None:
        target = box.dirs["unified"] / "cgroup.kill"
        if target.exists():
            try:
                cgroups.write(target, 1)
            except OSError:
                pass
        super().kill(box)

    def usage(self, box: Sandbox) -> tuple[float | None, int | None]:
        d = box.dirs["unified"]
        cpu = cgroups.read_keyed(d / "cpu.stat").get("usage_usec")
        memory = cgroups.read_int(d / "memory.current")
        if memory is not None:
            memory -= cgroups.read_keyed(d / "memory.stat").get("inactive_file", 0)
        return (cpu / 1e6 if cpu is not None else None), (max(memory, 0) if memory is not None else None)

    def oom_kills(self, box: Sandbox) -> int:
        return cgroups.read_keyed(box.dirs["unified"] / "memory.events").get("oom_kill", 0)


class CgroupV1(_CgroupIsolation):
    name = CGROUP_V1

    def __init__(self, roots: dict[str, Path]):
        super().__init__(roots)
        role = next(r for r in ("cpuacct", "cpu", "memory") if r in roots)  # an accounting hierarchy first
        self.warmer = AttachWarmer(lambda: own_tasks_file(roots[role].parent, role))
        if "devices" in roots:
            self.device_control = "devices cgroup"
        self.device_note = "not asked (no GPUs), or the devices hierarchy is not writable"

    def create(self, key: str, limits: Limits) -> Sandbox:
        self.warmer.poke()  # warm by the time its shell joins (attach_warmer.py)
        return super().create(key, limits)

    def teardown(self) -> None:
        self.warmer.stop()
        super().teardown()

    def _write_limits(self, box: Sandbox) -> None:
        lim = box.limits
        devices = box.dirs.get("devices")
        if devices is not None and lim.devices is not None:
            for rule in lim.devices.v1_deny_rules():  # before any member joins
                cgroups.write(devices / "devices.deny", rule)
        mem = box.dirs["memory"]
        if lim.memory_bytes > 0:
            memsw = mem / "memory.memsw.limit_in_bytes"
            # memsw may never be below the memory limit: raising both (set_limits), it goes first.
            raising = memsw.exists() and (cgroups.read_int(memsw) or 0) < lim.memory_bytes
            for path in ([memsw] if raising else []) + [mem / "memory.limit_in_bytes"] + ([] if raising else [memsw]):
                if path is memsw and not memsw.exists():
                    continue
                try:
                    cgroups.write(path, lim.memory_bytes)
                except OSError:
                    if path is not memsw:  # memsw is best effort: no escape into swap where it is kept
                        raise
        cpu = box.dirs.get("cpu")
        if cpu is not None:
            cgroups.write(cpu / "cpu.shares", lim.cpu_shares)
            cgroups.write(cpu / "cpu.cfs_period_us", CFS_PERIOD_US)
            cgroups.write(cpu / "cpu.cfs_quota_us", -1 if lim.cpu_quota_us is None else lim.cpu_quota_us)

    def usage(self, box: Sandbox) -> tuple[float | None, int | None]:
        cpu = None
        acct = box.dirs.get("cpuacct")
        if acct is not None:
            ns = cgroups.read_int(acct / "cpuacct.usage")
            cpu = ns / 1e9 if ns is not None else None
        mem = box.dirs["memory"]
        memory = cgroups.read_int(mem / "memory.usage_in_bytes")
        if memory is not None:
            memory -= cgroups.read_keyed(mem / "memory.stat").get("total_inactive_file", 0)
            memory = max(memory, 0)
        return cpu, memory

    def oom_kills(self, box: Sandbox) -> int:
        return cgroups.read_keyed(box.dirs["memory"] / "memory.oom_control").get("oom_kill", 0)


def detect(root_name: str, prefer: str | None = None, mounts: cgroups.Mounts | None = None,
           probe: bool = True, devices: bool = False) -> Isolation:
    """The best isolation this machine allows; ``prefer`` forces one (falling back if it cannot work).

    ``root_name`` is the directory created under each controller mount
    (e.g. ``corral-m1``); tests use their own so they can remove it. With
    ``probe`` a cgroup backend is only chosen after a short-lived process
    has run in a probe cgroup with limits written, so a half-usable
    hierarchy (say a v2 namespace that refuses controllers) falls back
    instead of failing every task later. With ``devices`` (a machine with GPUs) sandboxes can
    fence devices (``Limits.devices``): v1 through the devices hierarchy where it is writable, v2
    through a BPF device program where the kernel lets this agent load one.
    """
    if prefer is not None and prefer not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}, got {prefer!r}")
    mounts = cgroups.discover() if mounts is None else mounts
    order = [prefer] if prefer else []
    order += [i for i in ISOLATIONS if i not in order]
    for kind in order:
        if kind == CGROUP_V2 and mounts.v2 is not None and {"memory", "cpu"} <= mounts.v2_controllers:
            if cgroups.can_create_children(mounts.v2):
                iso: Isolation = CgroupV2(mounts.v2 / root_name, devices=devices)
                if _works(iso, probe):
                    return iso
        if kind == CGROUP_V1 and "memory" in mounts.v1 and cgroups.can_create_children(mounts.v1["memory"]):
            roots = {"memory": mounts.v1["memory"] / root_name}
            for controller in ("cpu", "cpuacct") + (("devices",) if devices else ()):
                mount = mounts.v1.get(controller)
                if mount is not None and cgroups.can_create_children(mount):
                    roots[controller] = mount / root_name
            iso = CgroupV1(roots)
            if _works(iso, probe):
                return iso
        if kind == RLIMIT:
            return Isolation()
    return Isolation()


PROBE_LIMITS = Limits(memory_bytes=256 * 2**20, cpu_quota_us=CFS_PERIOD_US, cpu_shares=1024, cpu_weight=100)


def _works(iso: Isolation, probe: bool) -> bool:
    try:
        iso.setup()
        if probe:
            box = iso.create(f"probe-{os.getpid()}", PROBE_LIMITS)
            try:
                subprocess.run([sys.executable, "-c", ""], preexec_fn=iso.preexec(box), check=True,
                               timeout=30, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            finally:
                iso.remove(box)
        return True
    except (OSError, subprocess.SubprocessError):
        try:
            iso.teardown()
        except OSError:
            pass
        return False
