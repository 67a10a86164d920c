"""The synthetic Borg-like trace: exact sizes, one trace per seed, all bands, a busy but feasible cell."""

import numpy as np
import pytest

from corral.model.priority import Band, band_of
from corral.sim.trace import TraceError
from corral.sim.traces.synthetic import expected_cpu_share, load_synthetic, requested_cpu, synthetic_trace


@pytest.fixture(scope="module")
def trace():
    return synthetic_trace(machines=1000, tasks=100_000, hours=24.0, seed=3)


def test_it_has_the_asked_machines_and_exactly_the_asked_tasks_in_jobs_of_1_to_500(trace, valid):
    valid(trace)
    assert len(trace.machines) == 1000 and trace.task_count() == 100_000
    assert 1 <= min(j.tasks for j in trace.jobs) and max(j.tasks for j in trace.jobs) <= 500  # half the cell
    assert {dict(m.attributes)["rack"] for m in trace.machines} == {f"r{i}" for i in range(25)}
    assert len({m.cpu for m in trace.machines}) > 2 and any(m.gpu for m in trace.machines)
    assert 30 <= len({j.user for j in trace.jobs}) <= 50


def test_the_same_seed_gives_the_same_trace_and_another_seed_another(trace):
    assert synthetic_trace(1000, 100_000, 24.0, seed=3).jobs == trace.jobs
    other = synthetic_trace(1000, 100_000, 24.0, seed=4)
    assert other.jobs != trace.jobs and other.machines != trace.machines


def test_every_band_is_present_services_run_on_and_usage_stays_below_the_limit(trace):
    bands = {band_of(j.priority) for j in trace.jobs}
    assert bands == {Band.BEST_EFFORT, Band.BATCH, Band.PRODUCTION}
    services = [j for j in trace.jobs if j.priority >= 9]
    assert all(j.appclass == "latency-sensitive" and j.duration is None for j in services)
    assert sum(j.arrival < 300 for j in services) > 0.7 * len(services)  # most deploy at the start
    assert 0 < sum(j.departure is not None for j in services) < 0.3 * len(services)  # some churn
    batch = [j for j in trace.jobs if j.priority < 9]
    assert all(60 <= j.duration <= 86400 and j.appclass == "batch" for j in batch)
    assert all(j.cpu_usage < j.cpu and j.memory_usage < j.memory for j in trace.jobs)
    assert any(j.gpu for j in batch)


def test_batch_arrives_faster_in_the_afternoon_than_at_night(trace):
    hours = np.array([j.arrival for j in trace.jobs if 2 <= j.priority <= 8]) // 3600
    assert (hours == 15).sum() > 2 * (hours == 3).sum()


def test_the_requested_cpu_keeps_the_cell_busy_but_not_hopelessly_overloaded(trace):
    capacity = sum(m.cpu for m in trace.machines)
    share = requested_cpu(trace, np.arange(2, 24.01, 0.5) * 3600) / capacity
    assert 0.6 <= share.mean() <= 0.85 and share.max() < 1.2
    assert expected_cpu_share(1000, 100_000, 24.0, capacity) == pytest.approx(share.mean(), abs=0.1)


def test_the_registry_defaults_are_small_and_a_path_is_refused():
    small = load_synthetic()
    assert (len(small.machines), small.task_count()) == (200, 20_000)
    with pytest.raises(TraceError, match="reads no file"):
        load_synthetic("some/file.csv")
