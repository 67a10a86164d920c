"""The cell state's checkpoint form: ``CellState.to_dict`` / ``from_dict`` (everything that survives a
restart; the simulator loads the same checkpoints).

Mappings keep their insertion order (which events decided): a state rebuilt from a checkpoint
iterates its machines, jobs and tasks in the same order as the live one, so it takes the same
decisions. The master's estimates (``estimates``) are derived from events too, but from events compaction
deletes, so they are kept (corral.master.estimates_codec); a checkpoint without them still loads.
Other derived state (job counts, quota charges (per live regular task), the live opportunistic tasks, rolling jobs, the cell view, the allocs'
member lists) is rebuilt from the records, never stored.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from corral.master.copies import CopyRecord
from corral.master.records import JobRecord, MachineRecord, TaskRecord
from corral.model.job import TaskState

CHECKPOINT_FORMAT = 2  # 1: ended jobs were all "dead"


def state_to_dict(state: Any) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "cell": state.cell,
        "seq": state.seq,
        "machines": {n: m.to_dict() for n, m in state.machines.items()},
        "jobs": {j: r.to_dict() for j, r in state.jobs.items()},
        "tasks": {n: t.to_dict() for n, t in state.tasks.items()},
        "job_tasks": {j: list(ns) for j, ns in state.job_tasks.items()},
        "pending": list(state.pending),
        "requests": dict(state.requests),
        **({"copies": {n: c.to_dict() for n, c in sorted(state.copies.items())}} if state.copies else {}),
        **({"machine_queues": state.machine_queues.to_dict()} if state.machine_queues else {}),
        "estimates": state.estimates.to_dict(),  # what the compacted events taught (estimates_codec.py)
    }


def state_from_dict(cls: type, d: dict[str, Any]) -> Any:
    """A ``cls`` (CellState) from a checkpoint of this version or an earlier one (format 1: jobs that
    ended are ``dead``; :meth:`JobRecord.from_dict` maps them by their recorded ends)."""
    if d.get("format", 1) > CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {d['format']} is newer than this corral reads "
                         f"({CHECKPOINT_FORMAT}): upgrade it")
    state = cls(d["cell"])
    state.seq = d["seq"]
    state.machines = {n: MachineRecord.from_dict(m) for n, m in d["machines"].items()}
    state.jobs = {j: JobRecord.from_dict(r) for j, r in d["jobs"].items()}
    state.tasks = {n: TaskRecord.from_dict(t) for n, t in d["tasks"].items()}
    state.job_tasks = defaultdict(list, {j: list(ns) for j, ns in d["job_tasks"].items()})
    state.pending = dict.fromkeys(d["pending"])
    state.requests = dict(d["requests"])
    state.copies = {n: CopyRecord.from_dict(c) for n, c in d.get("copies", {}).items()}
    state.machine_queues.load(d.get("machine_queues", []))
    opportunistic = []
    for task in state.tasks.values():
        state._moved(task.job, None, task.state)
        if task.state is not TaskState.DEAD:  # quota: live regular tasks are charged (CellState._count)
            if task.opportunistic:
                opportunistic.append((task.opportunistic, task.index, task.name))
            else:
                state._count(state.jobs[task.job], +1)
        if task.state is TaskState.RUNNING:
            task.request = state.jobs[task.job].request_of_task(task, task.version)
            if task.alloc is not None:
                state._enter_alloc(task, task.alloc)
    for job in state.jobs.values():
        if not job.state.ended:
            if job.spec.after is not None:
                state.waiting.add(job.id)
        if state._rolling(job):
            state.rolling.add(job.id)
    state.opportunistic = {name: None for _, _, name in sorted(opportunistic)}  # oldest first, as live
    state.quota_freed = False
    state._rebuild_view(None)
    return state
