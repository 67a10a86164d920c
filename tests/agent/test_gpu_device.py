"""On a machine with an NVIDIA GPU (``python3 -m pytest -m gpu tests/agent/test_gpu_device.py``):
a task given one GPU sees exactly that device through CUDA, and a task given none sees none; a
task that ignores the variables can open only its own GPU's device node (and, with a GPU,
/dev/nvidiactl), where the isolation can fence devices.

CUDA is asked through the driver's ``libcuda.so.1`` with ctypes (no toolkit, no Python package):
the driver API honours ``CUDA_VISIBLE_DEVICES``. Excluded from the default run (marker ``gpu``).
"""

from __future__ import annotations

import json
import sys

import pytest

from corral.agent import supervisor as sv
from corral.agent.gpus import detect_gpus
from corral.agent.launch import parse_launch
from tests.agent.conftest import wait_until

PROBE = r"""
import ctypes, json
cuda = ctypes.CDLL("libcuda.so.1")
rc = cuda.cuInit(0)
count = ctypes.c_int(0)
names = []
if rc == 0:
    cuda.cuDeviceGetCount(ctypes.byref(count))
    for i in range(count.value):
        dev, name = ctypes.c_int(0), ctypes.create_string_buffer(256)
        cuda.cuDeviceGet(ctypes.byref(dev), i)
        cuda.cuDeviceGetName(name, 256, dev)
        names.append(name.value.decode())
print(json.dumps({"init": rc, "count": count.value, "names": names}))
"""


def probe(runner, task_id, gpus, requested):
    launch = parse_launch({"task_id": task_id, "command": sys.executable, "args": ["-c", PROBE],
                           "gpus": list(gpus), "resources": {"gpu": requested}})
    runner.submit(sv.Launch(launch))
    wait_until(lambda: runner.status(task_id)["state"] in ("finished", "failed"), 60, f"{task_id} to finish")
    out = runner.logs(task_id, "stdout", 5).strip()
    assert runner.status(task_id)["state"] == "finished", runner.logs(task_id, "stderr", 20)
    return json.loads(out.splitlines()[-1])


@pytest.mark.gpu
def test_a_task_sees_exactly_its_gpu_and_a_task_without_one_sees_none(make_runner):
    # first: its teardown removes the cgroup root whatever happens below; the agent's user runs the
    # test's own python (a task uid may not reach it)
    runner = make_runner(run_as="agent")
    gpus = detect_gpus()
    print("detected:", gpus)
    assert gpus, "no NVIDIA GPU detected (NVML and nvidia-smi found none): run this on a GPU machine"
    mine = gpus[-1]
    seen = probe(runner, "with-gpu", (mine.index,), 1)
    print(f"a task given GPU {mine.index} ({mine.model}) saw:", seen)
    assert seen["init"] == 0 and seen["count"] == 1, seen
    assert seen["names"][0] in mine.model or mine.model in seen["names"][0], (seen, mine)
    none = probe(runner, "without-gpu", (), 0)
    print("a task given no GPU saw:", none)
    assert none["count"] == 0, none


OPEN_NODES = r"""
import glob, json, os, re
seen = {}
for path in sorted(glob.glob("/dev/nvidia[0-9]*")) + ["/dev/nvidiactl"]:
    try:
        os.close(os.open(path, os.O_RDWR))
        seen[path] = "ok"
    except OSError as e:
        seen[path] = e.errno
print(json.dumps(seen))
"""


@pytest.mark.gpu
def test_a_task_ignoring_the_variables_still_opens_only_its_own_gpus_device_node(cgroup_root, tmp_path):
    import errno

    from corral.agent.isolation import detect
    from corral.agent.runner import Runner

    gpus = detect_gpus()
    assert gpus, "no NVIDIA GPU detected (NVML and nvidia-smi found none): run this on a GPU machine"
    iso = detect(cgroup_root, devices=True)
    if iso.device_control is None:
        pytest.skip(f"this machine's isolation cannot fence devices: {iso.describe()}")
    # the test's own python runs the probe: the agent's user, not a task uid that may not reach it
    runner = Runner(tmp_path / "state", iso, kill_grace_s=1.0, tick_s=0.02, run_as="agent", gpus=len(gpus)).start()
    try:
        mine = gpus[-1]
        results = {}
        for task_id, assigned in (("own-gpu", (mine.index,)), ("no-gpu", ())):
            launch = parse_launch({"task_id": task_id, "command": sys.executable, "args": ["-c", OPEN_NODES],
                                   "gpus": list(assigned), "resources": {"gpu": len(assigned)}})
            runner.submit(sv.Launch(launch))
            wait_until(lambda: runner.status(task_id)["state"] in ("finished", "failed"), 60, f"{task_id} to finish")
            assert runner.status(task_id)["state"] == "finished", runner.logs(task_id, "stderr", 20)
            results[task_id] = json.loads(runner.logs(task_id, "stdout", 5).strip().splitlines()[-1])
    finally:
        runner.close()
    print(iso.describe(), results)
    own = f"/dev/nvidia{mine.index}"
    assert results["own-gpu"][own] == "ok" and results["own-gpu"]["/dev/nvidiactl"] == "ok", results
    assert all(v == errno.EPERM for k, v in results["own-gpu"].items() if k not in (own, "/dev/nvidiactl")), results
    assert all(v == errno.EPERM for v in results["no-gpu"].values()), results
