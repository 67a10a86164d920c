"""Isolation detection and the control files each cgroup version gets, on fake cgroup trees.

The real kernel paths are exercised in test_processes.py with whatever this
machine offers; these tests pin down the other version's file names and
formats (v2 on a v1 host, and the other way round) and the detection order.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.agent import cgroups
from corral.agent.isolation import CGROUP_V1, CGROUP_V2, RLIMIT, CgroupV1, CgroupV2, detect, limits_for
from corral.agent.launch import parse_launch

HYBRID = """\
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_mounts_are_parsed_into_v1_controllers_and_the_v2_mount():
    mounts = cgroups.discover(HYBRID)
    assert mounts.v2 == Path("/sys/fs/cgroup/unified")
    assert mounts.v1 == {"memory": Path("/sys/fs/cgroup/memory"), "cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
                         "cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct")}


def fake_v2(tmp_path: Path, controllers: str) -> cgroups.Mounts:
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers)
    (root / "cgroup.subtree_control").write_text("")
    return cgroups.Mounts(v2=root, v2_controllers=frozenset(controllers.split()))


def fake_v1(tmp_path: Path) -> cgroups.Mounts:
    mounts = {}
    for controller in ("memory", "cpu", "cpuacct"):
        (tmp_path / controller).mkdir()
        mounts[controller] = tmp_path / controller
    return cgroups.Mounts(v1=mounts)


@pytest.mark.parametrize(
    "case, make_mounts, prefer, want",
    [
        ("a v2 mount with memory and cpu controllers is used first",
         lambda tmp: fake_v2(tmp, "cpu memory io"), None, CGROUP_V2),
        ("a v2 mount without controllers (a hybrid host) falls back to rlimit when there is no v1",
         lambda tmp: fake_v2(tmp, ""), None, RLIMIT),
        ("writable v1 controllers are used when v2 offers none",
         lambda tmp: fake_v1(tmp), None, CGROUP_V1),
        ("no cgroup mounts at all means rlimit", lambda tmp: cgroups.Mounts(), None, RLIMIT),
        ("rlimit can be forced even where cgroups work", lambda tmp: fake_v1(tmp), RLIMIT, RLIMIT),
    ],
)
def test_detection_order(case, make_mounts, prefer, want, tmp_path):
    iso = detect("corral-t", prefer=prefer, mounts=make_mounts(tmp_path), probe=False)
    assert iso.name == want


def launch(**fields):
    return parse_launch({"task_id": "t", "command": "x", "resources": {"cpu": 1500, "memory": "256Mi"}, **fields})


def test_cgroup_v2_writes_memory_max_cpu_max_and_cpu_weight(tmp_path):
    mounts = fake_v2(tmp_path, "cpu memory")
    iso = detect("corral-t", mounts=mounts, probe=False)
    assert isinstance(iso, CgroupV2)
    assert set((mounts.v2 / "cgroup.subtree_control").read_text().split()) == {"+memory", "+cpu"}
    assert set((mounts.v2 / "corral-t" / "cgroup.subtree_control").read_text().split()) == {"+memory", "+cpu"}
    box = iso.create("t@0.1", limits_for(launch(appclass="latency-sensitive")))
    d = mounts.v2 / "corral-t" / "t@0.1"
    assert (d / "memory.max").read_text() == str(256 * 2**20)
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert int((d / "cpu.weight").read_text()) == 1500
    assert box.dirs == {"unified": d}


def test_cgroup_v1_writes_limit_in_bytes_cfs_quota_and_shares(tmp_path):
    iso = detect("corral-t", mounts=fake_v1(tmp_path), probe=False)
    assert isinstance(iso, CgroupV1)
    iso.create("t@0.1", limits_for(launch(appclass="batch")))
    assert (tmp_path / "memory/corral-t/t@0.1/memory.limit_in_bytes").read_text() == str(256 * 2**20)
    assert (tmp_path / "cpu/corral-t/t@0.1/cpu.cfs_quota_us").read_text() == "150000"
    assert (tmp_path / "cpu/corral-t/t@0.1/cpu.shares").read_text() == "1536"


def test_a_task_without_a_memory_limit_gets_no_memory_file_and_no_cpu_cap(tmp_path):
    iso = detect("corral-t", mounts=fake_v1(tmp_path), probe=False)
    iso.create("u@0.1", limits_for(parse_launch({"task_id": "u", "command": "x"})))
    assert not (tmp_path / "memory/corral-t/u@0.1/memory.limit_in_bytes").exists()
    assert (tmp_path / "cpu/corral-t/u@0.1/cpu.cfs_quota_us").read_text() == "-1"


def test_a_hierarchy_where_no_process_can_join_falls_back(tmp_path):
    mounts = fake_v1(tmp_path)
    (tmp_path / "memory" / "corral-t").mkdir()
    # a directory where the probe's cgroup.procs should be: the probe cannot join, detection falls back
    (tmp_path / "memory" / "corral-t" / f"probe-{os.getpid()}" / "cgroup.procs").mkdir(parents=True)
    assert detect("corral-t", mounts=mounts, probe=True).name == RLIMIT
