"""GPU detection (NVML, else nvidia-smi, else none), the master sending each task's GPU indices,
and the agent showing a task exactly those devices."""

from __future__ import annotations

import stat
from types import SimpleNamespace

import pytest

from corral.agent import supervisor as sv
from corral.agent.gpus import Gpu, detect_gpus, visible_devices
from corral.agent.launch import parse_launch
from corral.master.commands import RegisterMachine, StartTask, Submit
from tests.agent.conftest import wait_until
from tests.master.helpers import Harness


def fake_nvml(models, fail=False):
    calls = []

    def init():
        calls.append("init")
        if fail:
            raise RuntimeError("NVML Shared Library Not Found")

    return SimpleNamespace(
        nvmlInit=init, nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: len(models), nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: models[h].encode(),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(total=80 * 2**30)), calls


def fake_smi(tmp_path, output, code=0):
    path = tmp_path / "nvidia-smi"
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_nvml_names_each_gpu_with_its_model_and_memory_and_is_shut_down():
    nvml, calls = fake_nvml(["NVIDIA H100", "NVIDIA H100"])
    assert detect_gpus(nvml=nvml, smi="/nonexistent") == [Gpu(0, "NVIDIA H100", 80 * 2**30),
                                                          Gpu(1, "NVIDIA H100", 80 * 2**30)]
    assert calls == ["init", "shutdown"]


def test_without_a_working_nvml_nvidia_smi_answers(tmp_path):
    nvml, _ = fake_nvml([], fail=True)
    smi = fake_smi(tmp_path, "1, Tesla T4, 15360\n0, Tesla T4, 15360\n")
    assert detect_gpus(nvml=nvml, smi=smi) == [Gpu(0, "Tesla T4", 15360 * 2**20), Gpu(1, "Tesla T4", 15360 * 2**20)]


@pytest.mark.parametrize("case,output,code", [
    ("nvidia-smi fails without a driver", "NVIDIA-SMI has failed\n", 9),
    ("nvidia-smi lists nothing", "", 0),
])
def test_no_gpu_is_zero_without_an_error(tmp_path, case, output, code):
    nvml, _ = fake_nvml([], fail=True)
    assert detect_gpus(nvml=nvml, smi=fake_smi(tmp_path, output, code)) == []


def test_no_nvml_and_no_nvidia_smi_is_zero(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert detect_gpus(nvml=fake_nvml([], fail=True)[0]) == []


@pytest.mark.parametrize("gpus,requested,env", [
    ((1,), 1, {"CUDA_VISIBLE_DEVICES": "1", "NVIDIA_VISIBLE_DEVICES": "1"}),
    ((0, 2), 2, {"CUDA_VISIBLE_DEVICES": "0,2", "NVIDIA_VISIBLE_DEVICES": "0,2"}),
    ((), 0, {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "none"}),  # asked for none: sees none
    ((), 1, {}),  # indices unknown (an older master): left as they are
])
def test_a_task_sees_exactly_its_gpus(gpus, requested, env):
    assert visible_devices(gpus, requested) == env


def test_the_master_sends_the_gpu_indices_the_scheduler_chose():
    h = Harness()
    h.run(RegisterMachine("g1", {"cpu": "8", "memory": "32Gi", "gpu": 4}, address="http://g1"))
    h.run(Submit({"name": "train", "user": "alice", "tasks": 2, "resources": {"cpu": "1", "memory": "1Gi", "gpu": 2}}))
    starts = [e for e in h.schedule().effects if isinstance(e, StartTask)]
    sent = sorted(tuple(s.launch["gpus"]) for s in starts)
    assert sent == [(0, 1), (2, 3)]
    assert all(tuple(s.launch["gpus"]) == h.state.tasks[s.task].gpus for s in starts)


def test_the_agent_sets_the_devices_after_the_jobs_env_so_a_job_cannot_widen_them(make_runner):
    runner = make_runner()
    launch = parse_launch({"task_id": "g", "command": "sh", "args": ["-c", "echo $CUDA_VISIBLE_DEVICES/$NVIDIA_VISIBLE_DEVICES"],
                           "env": {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, "gpus": [2], "resources": {"gpu": 1}})
    runner.submit(sv.Launch(launch))
    wait_until(lambda: runner.status("g")["state"] == "finished", 10, "the task to finish")
    assert runner.logs("g", "stdout", 5).strip() == "2/2"
