"""A seeded service-and-batch workload for Omega's central experiment (``corral sim omega``).

Shaped on the workload figures of Omega (Schwarzkopf et al., EuroSys 2013, §2) and Borg (Verma et
al., EuroSys 2015, §2), not fitted to a trace (neither Google trace is available here):

* batch jobs are most of the jobs (here 10 batch arrivals per service arrival; Omega: over 80 %)
  but short (lognormal task run time, median 3 min) and of many small tasks (median 8, up to 200);
* service jobs are few, long-running (median 1 h here, clipped at 24 h, against the 1.5 h window)
  and hold most of what is allocated (about 40 % of the cell's CPU of the ~55 % requested: Omega
  reports services holding 55-80 % of the allocations and typical utilisation near 60 %);
* arrivals are Poisson, on 200 machines at ``load=1`` a batch job every 4 s and a service job every
  40 s on average (rates scale with the number of machines and with ``load``).

The cell starts in its steady state: the services alive at t=0 (as many as the arrival rate times
the mean run time, Little's law) arrive at 0 with the rest of their run time; they are the cell as
it was, placed before the experiment's clock starts (corral.sim.omega), not part of what it
measures. Everything is drawn with NumPy from ``seed``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from corral.sim.synthetic import MACHINE_SHAPES
from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.common import rack_attributes

GiB = 2**30
BATCH_EVERY_S, SERVICE_EVERY_S = 4.0, 40.0  # mean inter-arrival times at load 1 on REFERENCE_MACHINES
REFERENCE_MACHINES = 200
BATCH_TASKS, SERVICE_TASKS = (8, 1.2, 200), (4, 1.0, 50)  # lognormal median, sigma, largest
BATCH_RUN, SERVICE_RUN = (180.0, 1.0, 10.0, 6 * 3600.0), (3600.0, 1.0, 600.0, 24 * 3600.0)  # median, sigma, clip
# (millicores, memory bytes per millicore, weight): batch tasks small, services larger.
BATCH_SHAPES = ((500, 2 * GiB // 1000, 0.4), (1000, 2 * GiB // 1000, 0.4), (2000, 2 * GiB // 1000, 0.2))
SERVICE_SHAPES = ((1000, 4 * GiB // 1000, 0.3), (2000, 4 * GiB // 1000, 0.35), (4000, 4 * GiB // 1000, 0.25),
                  (8000, 4 * GiB // 1000, 0.1))
SERVICE_PRIORITY, BATCH_PRIORITY = 9, 4  # production and batch bands (Omega: two priorities)
USERS = 20


def omega_trace(machines: int = 200, hours: float = 1.5, load: float = 1.0, seed: int = 0) -> Trace:
    """``machines`` machines, arrivals over ``hours`` hours at ``load`` times the default rates."""
    cell_seed, svc_seed, batch_seed = np.random.SeedSequence(seed).spawn(3)
    cell = _cell(machines, np.random.default_rng(cell_seed))
    window = hours * 3600.0
    scale = load * machines / REFERENCE_MACHINES
    service_every, batch_every = SERVICE_EVERY_S / scale, BATCH_EVERY_S / scale
    rng = np.random.default_rng(svc_seed)
    alive = rng.poisson(_mean_run(SERVICE_RUN) / service_every)  # Little's law at t=0
    jobs = _jobs(rng, "svc0", np.zeros(alive), SERVICE_TASKS, SERVICE_RUN, SERVICE_SHAPES, SERVICE_PRIORITY,
                 "latency-sensitive", machines, residual=True)
    jobs += _jobs(rng, "svc", _poisson_times(rng, service_every, window), SERVICE_TASKS, SERVICE_RUN,
                  SERVICE_SHAPES, SERVICE_PRIORITY, "latency-sensitive", machines)
    rng = np.random.default_rng(batch_seed)
    jobs += _jobs(rng, "batch", _poisson_times(rng, batch_every, window), BATCH_TASKS, BATCH_RUN,
                  BATCH_SHAPES, BATCH_PRIORITY, "batch", machines)
    notes = [f"Omega-shaped synthetic workload (seed {seed}, load {load:g}): {machines} machines, {hours:g} h of "
             f"arrivals, a batch job every {batch_every:.3g} s and a service job every "
             f"{service_every:.3g} s on average; {alive} services already running at t=0 "
             "(shaped on Omega's and Borg's published workload figures, not a trace)."]
    return Trace("omega", cell, sort_jobs(jobs), source=f"omega seed={seed}", notes=notes)


def load_omega(path: str | Path | None = None, *, seed: int = 0, machines: int = 200, hours: float = 1.5,
               load: float = 1.0) -> Trace:
    """The registry's ``omega`` (``omega:machines=N,hours=H,load=X``)."""
    if path is not None:
        raise TraceError(path, 0, "the omega workload reads no file; give sizes as omega:machines=N,hours=H,load=X")
    if machines < 1 or hours <= 0 or load <= 0:
        raise TraceError("omega", 0, f"expected machines >= 1, hours > 0 and load > 0, got machines={machines}, "
                                     f"hours={hours:g}, load={load:g}")
    return omega_trace(machines, hours, load, seed)


def _mean_run(run: tuple[float, float, float, float]) -> float:
    median, sigma, _, _ = run
    return median * math.exp(sigma**2 / 2)


def _poisson_times(rng: np.random.Generator, every_s: float, window: float) -> np.ndarray:
    """Poisson arrival times in (0, window]: never 0, which is the running services' time."""
    n = rng.poisson(window / every_s)
    return np.sort(rng.uniform(0.0, window, n)).clip(0.001, None)


def _cell(machines: int, rng: np.random.Generator) -> list[TraceMachine]:
    weights = np.array([s[-1] for s in MACHINE_SHAPES])
    shapes = rng.choice(len(MACHINE_SHAPES), size=machines, p=weights / weights.sum()).tolist()
    return [TraceMachine(f"m{i:05d}", MACHINE_SHAPES[k][1], MACHINE_SHAPES[k][2], 0, "",
                         rack_attributes(i, shape=MACHINE_SHAPES[k][0])) for i, k in enumerate(shapes)]


def _jobs(rng: np.random.Generator, prefix: str, arrivals: np.ndarray, tasks: tuple, run: tuple, shapes: tuple,
          priority: int, appclass: str, machines: int, residual: bool = False) -> list[TraceJob]:
    n = len(arrivals)
    median, sigma, largest = tasks
    sizes = np.clip(np.ceil(rng.lognormal(math.log(median), sigma, n)), 1, min(largest, max(1, machines))).astype(int)
    run_median, run_sigma, low, high = run
    if residual:  # alive at t=0: a run seen under way is length-biased (lognormal: mu + sigma^2); what is left
        runs = np.clip(rng.lognormal(math.log(run_median) + run_sigma**2, run_sigma, n), low, high)
        runs = np.maximum(low, runs * rng.random(n))
    else:
        runs = np.clip(rng.lognormal(math.log(run_median), run_sigma, n), low, high)
    weights = np.array([s[2] for s in shapes])
    kinds = rng.choice(len(shapes), size=n, p=weights / weights.sum())
    users = rng.choice(USERS, size=n, p=(w := 1.0 / np.arange(1, USERS + 1)) / w.sum())
    jobs = []
    for i in range(n):
        cpu, per_milli, _ = shapes[kinds[i]]
        jobs.append(TraceJob(f"{prefix}-{i:06d}", f"user{users[i]:02d}", round(float(arrivals[i]), 3), cpu,
                             cpu * per_milli, int(sizes[i]), round(float(runs[i]), 3), priority=priority,
                             appclass=appclass))
    return jobs
