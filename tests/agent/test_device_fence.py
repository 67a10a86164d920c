"""A task's device fence (devices.py): which NVIDIA nodes a task may open, and the cgroup v1
devices controller enforcing a fence on a real device (/dev/null, major 1 minor 3) while leaving
others (/dev/zero) open. The v2 mechanism has its own test (test_devbpf.py)."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from corral.agent import cgroups
from corral.agent import supervisor as sv
from corral.agent.devices import DeviceFence, char_minors
from corral.agent.gpus import NVIDIA_MAJOR, gpu_fence
from corral.agent.isolation import CGROUP_V1, Isolation, Limits, Sandbox, detect
from corral.agent.launch import parse_launch
from tests.agent.conftest import wait_until
from tests.agent.test_devbpf import OPEN_BOTH


def test_a_task_may_open_its_gpus_and_the_control_nodes_and_no_other_gpu():
    fence = gpu_fence((1,), 1, machine_gpus=4, dev="/nonexistent")
    assert fence == DeviceFence(NVIDIA_MAJOR, frozenset({1, 254, 255}), frozenset({0, 1, 2, 3, 254, 255}))
    assert fence.v1_deny_rules() == ["c 195:0 rwm", "c 195:2 rwm", "c 195:3 rwm"]


def test_a_task_without_a_gpu_may_open_no_nvidia_node_not_even_the_control_one():
    fence = gpu_fence((), 0, machine_gpus=2, dev="/nonexistent")
    assert fence.allowed == frozenset()
    assert fence.v1_deny_rules() == ["c 195:0 rwm", "c 195:1 rwm", "c 195:254 rwm", "c 195:255 rwm"]


def test_no_fence_without_gpus_on_the_machine_or_without_the_masters_indices():
    assert gpu_fence((), 0, machine_gpus=0) is None
    assert gpu_fence((), 2, machine_gpus=4) is None  # an older master: as visible_devices, nothing hidden


def test_the_machines_device_nodes_of_a_major_are_found_by_number():
    assert {3, 5} <= char_minors(1)  # /dev/null, /dev/zero
    assert char_minors(1, "/nonexistent") == frozenset()


@pytest.fixture
def v1_devices(cgroup_root):
    mounts = cgroups.discover()
    if "devices" not in mounts.v1 or "memory" not in mounts.v1:
        pytest.skip("no cgroup v1 devices and memory hierarchies on this machine")
    iso = detect(cgroup_root, prefer=CGROUP_V1, devices=True)
    if iso.name != CGROUP_V1 or iso.device_control is None:
        pytest.skip(f"cgroup v1 with a writable devices hierarchy is not usable here ({iso.describe()})")
    yield iso
    iso.teardown()


def test_cgroup_v1_denies_the_fenced_device_to_the_tasks_processes_only(v1_devices):
    fence = DeviceFence(1, allowed=frozenset({5}), known=frozenset({3, 5}))
    box = v1_devices.create("fenced", Limits(0, None, 1024, 100, devices=fence))
    try:
        argv, preexec = v1_devices.command(box, [sys.executable, "-c", OPEN_BOTH])
        inside = subprocess.run(argv, preexec_fn=preexec, capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)
    finally:
        v1_devices.remove(box)
    plain = v1_devices.create("plain", Limits(0, None, 1024, 100))
    try:
        argv, preexec = v1_devices.command(plain, [sys.executable, "-c", OPEN_BOTH])
        beside = subprocess.run(argv, preexec_fn=preexec, capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)
    finally:
        v1_devices.remove(plain)
    assert inside.stdout.split("\n")[:2] == [f"/dev/null {errno.EPERM}", "/dev/zero ok"], inside
    assert beside.stdout.split("\n")[:2] == ["/dev/null ok", "/dev/zero ok"], beside


class RecordingIsolation(Isolation):
    def __init__(self):
        self.created: dict[str, Limits] = {}

    def create(self, key: str, limits: Limits) -> Sandbox:
        self.created[key.split("@")[0]] = limits
        return Sandbox(key, limits)


def test_the_runner_of_a_gpu_machine_fences_each_task_to_its_assigned_gpus(tmp_path: Path):
    from corral.agent.runner import Runner

    iso = RecordingIsolation()
    runner = Runner(tmp_path / "state", iso, tick_s=0.02, kill_grace_s=1.0, run_as="agent", gpus=2).start()
    try:
        for task_id, gpus in (("with", [1]), ("without", [])):
            runner.submit(sv.Launch(parse_launch({"task_id": task_id, "command": "true", "gpus": gpus,
                                                  "resources": {"gpu": len(gpus)}})))
        wait_until(lambda: all(runner.status(t)["state"] == "finished" for t in ("with", "without")), 10, "the tasks")
    finally:
        runner.close()
    assert iso.created["with"].devices.allowed == frozenset({1, 254, 255})
    assert iso.created["without"].devices.allowed == frozenset()
