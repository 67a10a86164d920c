"""Alibaba 2017 batch tasks as CloudSimPy packaged them (``jobs.csv``), on a synthesised cell.

In: one row per task of a batch job: submit_time (s), duration (s), cpu (cores per instance),
memory (per instance, as a fraction of one machine's memory), job_id, task_id, instances_num.
Out: one job per (job_id, task_id) with ``instances_num`` tasks. The rows carry no machines:
the cell is ``machines`` machines of the shape CloudSimPy used (64 cores, memory 1).
"""

from __future__ import annotations

import zlib
from pathlib import Path

from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.common import GiB, csv_rows, default_traces_dir, existing, number, rack_attributes

FILE = "jobs.csv"
COLUMNS = ("submit_time", "duration", "cpu", "memory", "job_id", "task_id", "instances_num")
MACHINE_CPU = 64_000  # millicores: CloudSimPy's MachineConfig(64, 1, 1), the Alibaba 2017 machines' 64 cores
MACHINE_MEMORY = 256 * GiB  # assumed: what memory 1.0 (one machine's memory) stands for
PRIORITY = 2  # batch; the rows carry no priority
USERS = 20


def default_path() -> Path:
    return default_traces_dir() / "cloudsimpy-alibaba-batch" / FILE


def load_alibaba_batch(path: str | Path | None = None, *, seed: int = 0, machines: int = 50) -> Trace:
    """The batch tasks on ``machines`` machines of 64 cores and 256 GiB.

    The default 50 machines make the time-averaged CPU request of the whole file (about 1,880
    cores) about 59 % of the cell; its bursts (up to 132,000 cores for a few minutes) queue.
    ``path`` is jobs.csv or its folder. Deterministic: ``seed`` is unused.
    """
    file = Path(path) if path is not None else default_path()
    if file.is_dir():
        file = file / FILE
    existing(file, "CloudSimPy batch jobs file")
    if machines < 1:
        raise TraceError(file, 0, f"option machines: expected >= 1, got {machines}")
    jobs, seen = [], {}
    for line, row in csv_rows(file, COLUMNS):
        job_id = number(file, line, row, "job_id", "a job id", integer=True)
        task_id = number(file, line, row, "task_id", "a task id", integer=True)
        if (job_id, task_id) in seen:
            raise TraceError(file, line, f"expected one row per (job_id, task_id); ({job_id}, {task_id}) repeats "
                                         f"line {seen[job_id, task_id]}")
        seen[job_id, task_id] = line
        memory = number(file, line, row, "memory", "fraction of one machine's memory")
        if memory > 1:
            raise TraceError(file, line, f"column 'memory': expected a fraction of one machine's memory <= 1, "
                                         f"got {row['memory']!r}")
        jobs.append(TraceJob(
            name=f"j{job_id}-t{task_id}", user=f"user{zlib.crc32(str(job_id).encode()) % USERS:02d}",
            arrival=number(file, line, row, "submit_time", "seconds"),
            cpu=round(number(file, line, row, "cpu", "cores") * 1000), memory=round(memory * MACHINE_MEMORY),
            tasks=number(file, line, row, "instances_num", "instances", integer=True, minimum=1),
            duration=number(file, line, row, "duration", "seconds"), priority=PRIORITY, appclass="batch",
        ))
    cell = [TraceMachine(f"m{i:05d}", MACHINE_CPU, MACHINE_MEMORY, attributes=rack_attributes(i))
            for i in range(machines)]
    notes = [
        f"The rows carry no machines: {machines} machines of 64 cores (CloudSimPy's machine shape) and "
        f"256 GiB are synthesised.",
        "memory is normalised to one machine's memory (CloudSimPy's machines have memory 1); one machine's "
        "memory is assumed to be 256 GiB.",
        "duration is CloudSimPy's per-task figure, the mean over the task's instances: every instance runs "
        "exactly that long.",
        f"All tasks are batch at priority {PRIORITY} (the rows carry no priority); no usage is given.",
        f"The rows carry no users: each job belongs to one of {USERS} users by a CRC-32 hash of its job_id.",
    ]
    return Trace("alibaba-batch", cell, sort_jobs(jobs), source=str(file), notes=notes)
