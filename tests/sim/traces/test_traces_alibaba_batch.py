"""CloudSimPy's Alibaba 2017 batch tasks: one job per (job_id, task_id) with instances_num tasks."""

from pathlib import Path

import pytest

from corral.sim.trace import TraceError
from corral.sim.traces.alibaba_batch import FILE, MACHINE_MEMORY, load_alibaba_batch

SOURCE = Path(__file__).resolve().parents[3].parent / "shared" / "traces" / "cloudsimpy-alibaba-batch" / FILE
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason=f"CloudSimPy jobs.csv not found at {SOURCE}")


def test_a_sample_maps_rows_to_jobs_of_instances_num_tasks(tmp_path, head, valid):
    trace = valid(load_alibaba_batch(head(SOURCE, tmp_path / FILE, 31), machines=7))
    assert len(trace.jobs) == 30 and len(trace.machines) == 7
    first = {j.name: j for j in trace.jobs}["j1-t1"]  # 0,539,116.38...,1.0,0.0054...,1,1,283,0
    assert (first.arrival, first.tasks, first.cpu, first.priority) == (539.0, 283, 1000, 2)
    assert first.duration == pytest.approx(116.38162544169612)
    assert first.memory == round(0.005404705821447985 * MACHINE_MEMORY)
    assert first.user == load_alibaba_batch(head(SOURCE, tmp_path / "again.csv", 3)).jobs[0].user
    assert all(j.user.startswith("user") and 0 <= int(j.user[4:]) < 20 for j in trace.jobs)


def test_the_whole_file_is_31756_jobs_of_2551075_tasks_over_16_hours_on_50_machines():
    trace = load_alibaba_batch()
    assert (len(trace.jobs), trace.task_count(), len(trace.machines)) == (31756, 2551075, 50)
    assert 59_000 < trace.horizon < 60_000


@pytest.mark.parametrize("case, row, expected", [
    ("a non-numeric duration", "1,7448,slow,0.5,0.0078,9,23,67,0", "duration"),
    ("a memory above one machine", "1,7448,73.5,0.5,1.5,9,23,67,0", "memory"),
    ("zero instances", "1,7448,73.5,0.5,0.0078,9,23,0,0", "instances_num"),
    ("a repeated job and task", "1,7448,73.5,0.5,0.0078,1,1,67,0", "repeats line 2"),
])
def test_a_bad_row_names_the_file_its_line_and_the_expected_thing(tmp_path, head, case, row, expected):
    path = head(SOURCE, tmp_path / FILE, 5, edit={3: row})
    with pytest.raises(TraceError) as e:
        load_alibaba_batch(path)
    assert (e.value.path, e.value.line) == (str(path), 3) and expected in e.value.message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TraceError, match="jobs.csv"):
        load_alibaba_batch(tmp_path)
