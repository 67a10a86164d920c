"""The colocation shell on fake cgroup trees: which file each cgroup version gets and in what format,
rates from cumulative counters, and a failed write tried again at the next step."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.agent.colocation import ColocationConfig, ColocationPolicy, TaskCpu
from corral.agent.isolation import Isolation, Sandbox, limits_of
from corral.agent.throttle import Colocator, LiveTask, write_cpu_cap


def v2_box(tmp_path: Path, key: str, cpu: int) -> Sandbox:
    d = tmp_path / key
    d.mkdir()
    (d / "cpu.max").write_text(f"{cpu * 100} 100000" if cpu else "max 100000")
    return Sandbox(key, limits_of(cpu, 0), {"unified": d})


def v1_box(tmp_path: Path, key: str, cpu: int) -> Sandbox:
    dirs = {}
    for role in ("memory", "cpu", "cpuacct"):
        (tmp_path / role / key).mkdir(parents=True)
        dirs[role] = tmp_path / role / key
    return Sandbox(key, limits_of(cpu, 0), dirs)


@pytest.mark.parametrize("case, cpu, cap, want", [
    ("a cap is written as quota and period", 2000, 500, "50000 100000"),
    ("no cap writes the task's own limit back", 2000, None, "200000 100000"),
    ("a cap above the task's own limit stays at its limit", 1000, 4000, "100000 100000"),
    ("a task without a cpu limit goes back to max", 0, None, "max 100000"),
    ("the kernel's smallest quota is 1 ms", 1000, 1, "1000 100000"),
])
def test_cgroup_v2_gets_cpu_max(case, cpu, cap, want, tmp_path):
    box = v2_box(tmp_path, "t", cpu)
    assert write_cpu_cap(box, cap)
    assert (box.dirs["unified"] / "cpu.max").read_text() == want


@pytest.mark.parametrize("case, cpu, cap, want", [
    ("a cap is written as the CFS quota", 2000, 500, "50000"),
    ("no cap writes the task's own limit back", 2000, None, "200000"),
    ("a task without a cpu limit goes back to -1", 0, None, "-1"),
])
def test_cgroup_v1_gets_cfs_quota_us(case, cpu, cap, want, tmp_path):
    box = v1_box(tmp_path, "t", cpu)
    assert write_cpu_cap(box, cap)
    assert (box.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == want


def test_without_a_cpu_cgroup_nothing_is_written():
    assert write_cpu_cap(Sandbox("t", limits_of(1000, 0)), 500) is False


class CountingIsolation(Isolation):
    """Cumulative CPU seconds per sandbox, set by the test."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    def usage(self, box: Sandbox):
        return self.cpu.get(box.key), 0


def test_rates_from_counters_cap_batch_and_a_failed_write_is_tried_again(tmp_path):
    now = [0.0]
    iso = CountingIsolation()
    policy = ColocationPolicy(ColocationConfig(capacity_milli=4000, release_after_s=5), lambda: now[0])
    colocator = Colocator(policy, iso, clock=lambda: now[0])
    web, batch = v2_box(tmp_path, "web", 2000), v2_box(tmp_path, "batch", 4000)
    tasks = [LiveTask("web", True, 2000, web), LiveTask("batch", False, 4000, batch)]
    iso.cpu = {"web": 0.0, "batch": 0.0}
    colocator.step(tasks)  # first reading: no rate yet, the service idle at its floor (200m)
    assert (batch.dirs["unified"] / "cpu.max").read_text() == "380000 100000"
    now[0], iso.cpu = 0.5, {"web": 0.8, "batch": 1.0}  # 1.6 cores for the service: reserve 2000m
    (batch.dirs["unified"] / "cpu.max").unlink()
    (batch.dirs["unified"] / "cpu.max").mkdir()  # the write fails (as when the cgroup is going away)
    assert colocator.step(tasks).caps == {"batch": 2000}
    (batch.dirs["unified"] / "cpu.max").rmdir()
    now[0], iso.cpu = 1.0, {"web": 1.6, "batch": 2.0}
    colocator.step(tasks)
    assert (batch.dirs["unified"] / "cpu.max").read_text() == "200000 100000"


def test_the_agents_metrics_show_the_reserve_and_each_capped_batch_task(tmp_path):
    from types import SimpleNamespace

    from corral.agent.metrics import AgentMetrics

    policy = ColocationPolicy(ColocationConfig(capacity_milli=4000), lambda: 0.0)
    colocator = Colocator(policy, CountingIsolation(), clock=lambda: 0.0)
    # 4 cores; the service reserves 2: etl (4-core limit) and tiny (no limit: counts as 4) share 2.
    colocator.last = policy.decide([TaskCpu("web", True, 2000, 2000), TaskCpu("etl", False, 4000, 4000),
                                    TaskCpu("tiny", False, 0, 0)])
    runner = SimpleNamespace(statuses=lambda: [], starts=0, start_failures=0, colocator=colocator)
    text = AgentMetrics(SimpleNamespace(runner=runner, polls=0)).rendered().decode()
    assert "corral_agent_ls_reserved_cores 2.0" in text
    assert 'corral_agent_batch_cpu_cap_cores{task="etl"} 1.0' in text
    assert 'corral_agent_batch_cpu_cap_cores{task="tiny"} 1.0' in text
