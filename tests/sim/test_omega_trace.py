"""The ``omega`` workload: a service and a batch workload, seeded, in its steady state from t=0."""

import numpy as np
import pytest

from corral.sim.trace import TraceError
from corral.sim.traces import load_trace
from corral.sim.traces.omega import BATCH_EVERY_S, SERVICE_EVERY_S
from corral.sim.traces.synthetic import requested_cpu


def test_the_same_seed_gives_the_same_workload_and_another_seed_another():
    a, b = load_trace("omega:machines=50,hours=0.5", seed=2), load_trace("omega", seed=2, machines=50, hours=0.5)
    assert a.jobs == b.jobs and a.machines == b.machines
    assert load_trace("omega:machines=50,hours=0.5", seed=3).jobs != a.jobs


def test_batch_jobs_are_most_jobs_and_services_most_of_the_requested_cpu():
    trace = load_trace("omega")
    arriving = [j for j in trace.jobs if j.arrival > 0]
    batch = [j for j in arriving if j.appclass == "batch"]
    assert len(batch) / len(arriving) > 0.8  # Omega: over 80 % of jobs are batch
    window = max(j.arrival for j in trace.jobs)
    assert len(batch) == pytest.approx(window / BATCH_EVERY_S, rel=0.1)
    assert len(arriving) - len(batch) == pytest.approx(window / SERVICE_EVERY_S, rel=0.25)
    services = type(trace)("s", trace.machines, [j for j in trace.jobs if j.appclass != "batch"])
    times = np.linspace(0, window, 10)
    capacity = sum(m.cpu for m in trace.machines)
    total, held = requested_cpu(trace, times) / capacity, requested_cpu(services, times) / capacity
    assert 0.35 < total.mean() < 0.75 and (held / total).mean() > 0.55  # services hold most of it
    assert held[0] > 0.3  # the cell starts in its steady state: services already running at t=0


def test_rates_scale_with_the_machines_and_the_load():
    small = load_trace("omega:machines=20,hours=1")
    loaded = load_trace("omega:machines=20,hours=1,load=2")
    count = lambda t: sum(1 for j in t.jobs if j.arrival > 0)  # noqa: E731
    assert count(small) == pytest.approx(3600 / BATCH_EVERY_S / 10 * 1.1, rel=0.2)
    assert count(loaded) == pytest.approx(2 * count(small), rel=0.2)


@pytest.mark.parametrize("name", ["omega:machines=0", "omega:load=0", "omega:hours=-1"])
def test_bad_sizes_name_what_was_expected(name):
    with pytest.raises(TraceError, match="expected machines >= 1, hours > 0 and load > 0"):
        load_trace(name)
