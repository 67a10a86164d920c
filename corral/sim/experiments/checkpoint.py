"""What every experiment starts from: the trace's cell and a checkpoint of its workload.

Borg compacted checkpoints of real cells: the tasks a cell ran at one moment,
a workload that fitted that cell. A trace's snapshot (``snapshot.py``) can ask
for more than the trace's cell holds — a burst of arrivals that really queued,
or more GPUs of a model than the cell has — and a compaction of it would then
only measure the burst. So, by default, the checkpoint is the part of the
snapshot the trace's cell runs: the snapshot is packed once onto the whole cell
by the master (the default policy, the base seed) and the tasks it leaves
pending are left out, and counted in the notes. ``keep_overflow`` keeps them;
the searches then grow the cell with clones (``search.py``).

Before that, screening leaves out, and says so in the notes, the jobs no cell
size could ever hold: those the master's admission refuses, and those whose
task is larger than every machine of the cell (or asks for a GPU model the cell
lacks). Kept in, they would stay pending on any number of machines and hide
every other effect.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from corral.master.records import job_id
from corral.sched.policy import DEFAULT_POLICY
from corral.sim.experiments.pack import fits, refused
from corral.sim.experiments.snapshot import PEAK, resolve_time, snapshot
from corral.sim.trace import Trace, TraceJob, TraceMachine


@dataclass
class Checkpoint:
    trace: str
    source: str
    at: float  # seconds from the trace start
    machines: list[TraceMachine]
    jobs: list[TraceJob]
    notes: list[str] = field(default_factory=list)
    snapshot_tasks: int = 0  # tasks alive at ``at``, before screening
    overflow: int = 0  # tasks of the snapshot the trace's cell could not hold, left out

    @property
    def tasks(self) -> int:
        return sum(j.tasks for j in self.jobs)


def fits_some_machine(jobs: list[TraceJob], machines: list[TraceMachine]) -> list[bool]:
    """For each job: could one of its tasks run on some machine of the cell, alone?"""
    shapes = {(m.cpu, m.memory, m.gpu, m.gpu_model) for m in machines}  # a cell has few machine shapes
    known: dict[tuple, bool] = {}
    out = []
    for j in jobs:
        key = (j.cpu, j.memory, j.gpu, j.gpu_models)
        if key not in known:
            known[key] = any(j.cpu <= cpu and j.memory <= memory and j.gpu <= gpu
                             and (not j.gpu or not j.gpu_models or model in j.gpu_models)
                             for cpu, memory, gpu, model in shapes)
        out.append(known[key])
    return out


def _describe(jobs: list[TraceJob], why: str, example: str) -> str:
    return f"{len(jobs)} jobs ({sum(j.tasks for j in jobs)} tasks) left out: {why} (e.g. {example})"


def running_part(machines: list[TraceMachine], jobs: list[TraceJob], seed: int) -> list[TraceJob]:
    """The tasks of ``jobs`` the master places on ``machines`` (default policy, ``seed``), as jobs
    with fewer tasks; jobs with none placed are left out."""
    packed = fits(machines, jobs, DEFAULT_POLICY, seed, placement=True)
    placed: Counter = Counter()
    for counts in packed.placement.values():
        placed.update(counts)
    kept = []
    for j in jobs:
        n = placed[job_id(j.name, j.user)]
        if n:
            kept.append(j if n == j.tasks else replace(j, tasks=n))
    return kept


def checkpoint(trace: Trace, at: float | str = PEAK, seed: int = 0, keep_overflow: bool = False) -> Checkpoint:
    """The checkpoint of ``trace`` at ``at`` (see the module doc), with the trace's notes."""
    seconds = resolve_time(trace, at)
    jobs = snapshot(trace, seconds)
    snapshot_tasks = sum(j.tasks for j in jobs)
    left = 0
    notes = list(trace.notes)
    where = "the peak of requested dominant share" if at == PEAK else "the time asked for"
    notes.append(f"workload: the {len(jobs)} jobs alive at t={seconds:g} s ({where}), repacked from scratch; "
                 "each job's tasks counted as started on arrival")
    denied = refused(jobs)
    if denied:
        first = next(iter(denied))
        notes.append(_describe([j for j in jobs if job_id(j.name, j.user) in denied],
                               "the master's admission refuses them", f"{first}: {denied[first]}"))
        jobs = [j for j in jobs if job_id(j.name, j.user) not in denied]
    fit = fits_some_machine(jobs, trace.machines)
    too_big = [j for j, ok in zip(jobs, fit) if not ok]
    if too_big:
        notes.append(_describe(too_big, "a task is larger than every machine of the cell", too_big[0].name))
        jobs = [j for j, ok in zip(jobs, fit) if ok]
    if not keep_overflow and jobs:
        asked = {j.name: j.tasks for j in jobs}
        running = running_part(trace.machines, jobs, seed)
        left = sum(asked.values()) - sum(j.tasks for j in running)
        if left:
            partly = sum(1 for j in running if j.tasks < asked[j.name])
            notes.append(f"checkpoint: {left} of the snapshot's {sum(asked.values())} tasks do not fit the trace's "
                         f"cell of {len(trace.machines)} machines ({DEFAULT_POLICY} policy, seed {seed}) and are left "
                         f"out ({len(jobs) - len(running)} whole jobs, part of {partly} more): a checkpoint holds "
                         "what the cell runs; --keep-overflow keeps them")
        jobs = running
    return Checkpoint(trace.name, trace.source, seconds, list(trace.machines), jobs, notes, snapshot_tasks, left)
