"""DLRM inference services: production, latency-sensitive, limits as requests, a cell sized from the peak."""

from pathlib import Path

import pytest

from corral.sim.trace import TraceError
from corral.sim.traces.dlrm import FILE, load_dlrm

GiB = 2**30
SOURCE = Path(__file__).resolve().parents[3].parent / "shared" / "traces" / "alibaba-gpu-v2025-dlrm" / FILE
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason=f"DLRM trace not found at {SOURCE}")


def sample(tmp_path: Path, edit: dict[int, str] | None = None) -> Path:
    """The header, 20 instances that existed before the trace start and 10 created during it (lines 7282-7291)."""
    lines = SOURCE.read_text().splitlines()
    chosen = lines[:21] + lines[7281:7291]
    for n, text in (edit or {}).items():
        chosen[n - 1] = text
    path = tmp_path / FILE
    path.write_text("\n".join(chosen) + "\n")
    return path


def test_a_sample_keeps_every_instance_and_maps_units_times_and_density(tmp_path, valid):
    trace = valid(load_dlrm(sample(tmp_path)))
    assert trace.task_count() == 30
    assert all(j.priority == 9 and j.appclass == "latency-sensitive" for j in trace.jobs)
    early = [j for j in trace.jobs if j.arrival == 0]
    assert sum(j.tasks for j in early) == 20 and all(j.user == "app_0" and j.departure is None for j in early)
    assert {(j.cpu, j.memory, j.gpu, j.max_per_machine) for j in early} == {(12000, 120 * GiB, 1, 8)}
    created = {j.name: j for j in trace.jobs}["app_88-cn-instance_7281"]
    assert (created.arrival, created.departure, created.tasks) == (610.0, 91730.0, 1)
    assert (created.cpu, created.memory, created.gpu, created.max_per_machine) == (64000, 320 * GiB, 0, None)
    assert (created.cpu_usage, created.memory_usage) == (created.cpu, created.memory)
    roles = {dict(m.attributes)["role"] for m in trace.machines}
    assert roles == {"cn", "hn"} and all(m.gpu == 8 for m in trace.machines if m.name.startswith("hn"))
    assert any("estimated as the request" in n for n in trace.notes)


def test_the_whole_file_is_23871_instances_in_17120_jobs_on_2412_cpu_and_503_gpu_nodes():
    trace = load_dlrm()
    assert (trace.task_count(), len(trace.jobs)) == (23871, 17120)
    assert sum(m.name.startswith("cn") for m in trace.machines) == 2412
    assert sum(m.name.startswith("hn") for m in trace.machines) == 503
    assert trace.horizon == 2677541.0


@pytest.mark.parametrize("case, row, expected", [
    ("a non-numeric cpu limit", "instance_0,HN,app_0,12,many,1,1,25,25,120.0,120.0,640.0,800.0,8,,,", "cpu_limit"),
    ("an unknown role", "instance_0,XN,app_0,12,12,1,1,25,25,120.0,120.0,640.0,800.0,8,,,", "role"),
    ("a fractional GPU count", "instance_0,HN,app_0,12,12,1,0.5,25,25,120.0,120.0,640.0,800.0,8,,,", "gpu_limit"),
    ("a deletion before the creation", "instance_0,HN,app_0,12,12,1,1,25,25,120.0,120.0,640.0,800.0,8,90,90,30",
     "deletion_time"),
])
def test_a_bad_row_names_the_file_its_line_and_the_expected_column(tmp_path, case, row, expected):
    path = sample(tmp_path, edit={3: row})
    with pytest.raises(TraceError) as e:
        load_dlrm(path)
    assert (e.value.path, e.value.line) == (str(path), 3) and expected in e.value.message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TraceError, match=FILE):
        load_dlrm(tmp_path)
