"""On a machine with an NVIDIA GPU (``python3 -m pytest -m gpu tests/agent/test_gpu_device.py``):
a task given one GPU sees exactly that device through CUDA, and a task given none sees none.

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
    runner = make_runner()  # first: its teardown removes the cgroup root whatever happens below
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
