"""The cell's state as the master knows it, changed only by applying events.

``CellState.apply(event)`` is the one way state changes: the live master
applies each event as it emits it, a restarted master applies the logged
events after its checkpoint, and both end in the same state
(``to_dict()`` compares equal). Applying is deterministic: it reads nothing
but the event and the state.

Soft state — pending reasons, when an agent was last heard from — is kept
here too but is not part of ``to_dict()``; it is recomputed after a restart.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

import numpy as np

from corral.model.job import JobState, TaskState, job_end_state, task_name
from corral.model.priority import Band
from corral.model.resources import DIMS, Resources
from corral.model.spec import parse_job_spec
from corral.master import events as ev
from corral.master.estimates import MasterEstimates
from corral.master.alloc_accounts import AllocAccounts
from corral.master.quota_accounts import QuotaAccounts
from corral.master.checkpoint import state_from_dict, state_to_dict
from corral.master import drains
from corral.master.copies import CopyAccounts
from corral.master.invariants import InvariantError, check
from corral.master.machine_queues import QueueBook, QueuedCopy
from corral.master.lifecycle import Transition, TransitionError, check_job_transition, next_task_state
from corral.master.records import JobRecord, MachineRecord, TaskRecord
from corral.sched.cellview import CellView, PlacementError
from corral.sched.request import PlacedTask

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
_GONE = object()


class PendingObserver(Protocol):
    """Told when a task becomes pending or stops being pending (the unschedulable queue listens)."""

    def pending_added(self, name: str) -> None: ...

    def pending_removed(self, name: str) -> None: ...


class _Nobody:
    def pending_added(self, name: str) -> None:
        pass

    def pending_removed(self, name: str) -> None:
        pass


class CellState(AllocAccounts, CopyAccounts, QuotaAccounts):
    def __init__(self, cell: str = "local"):
        self.cell = cell
        self.seq = 0
        self.machines: dict[str, MachineRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.requests: dict[str, str] = {}  # "<user>/<request id>" -> job id
        # derived, kept up to date by apply
        self.job_tasks: dict[str, list[str]] = defaultdict(list)
        # job -> [its pending tasks, its running tasks]: a job's state follows from these in O(1).
        self.job_live: dict[str, list[int]] = {}
        self.pending: dict[str, None] = {}  # pending task names in the order they became pending
        self.observer: PendingObserver = _Nobody()
        self.rolling: set[str] = set()  # jobs with running tasks of an older spec version
        self.waiting: set[str] = set()  # live jobs ordered after another job (spec.after)
        self.usage: dict[tuple[str, Band], np.ndarray] = {}
        # quota charged per live regular task, live opportunistic tasks oldest first (quota_accounts.py)
        self.charged, self.opportunistic, self.quota_freed = {}, {}, False
        # alloc (its task name) -> the tasks placed in it and what each takes of it (cpu, memory, disk, gpu)
        self.alloc_members: dict[str, dict[str, np.ndarray]] = {}
        # task -> its speculative copy; soft: copies dropped with their tasks, to kill (corral.master.copies)
        self.copies, self.cancelled = {}, []
        # task -> the old copy a start-first move leaves on its source until the new one runs; soft:
        # drains a rebuilt view could not place again, to kill (corral.master.drains)
        self.draining, self.drains_dropped = {}, []
        self.drains_released = 0  # rooms drains gave back (no event: a round must look again)
        self.estimates = MasterEstimates()  # runtime and failure estimates (corral.master.estimates)
        self.machine_queues = QueueBook()  # pending tasks waiting in agents' queues (machine_queues.py)
        self._view = CellView([])
        self._view_stale = False  # machines were added since the view was built (see _machine_registered)
        self._appliers = {
            ev.MachineRegistered: self._machine_registered, ev.MachineLost: self._machine_lost,
            ev.JobSubmitted: self._job_submitted, ev.JobUpdated: self._job_updated,
            ev.JobKilled: self._job_killed, ev.JobFailed: self._job_failed,
            ev.TaskScheduled: self._task_scheduled, ev.TaskEnded: self._task_ended,
            ev.TaskUpgraded: self._task_upgraded,
            ev.AllocSetSubmitted: self._job_submitted, ev.AllocSetKilled: self._job_killed,
            ev.CopyScheduled: self._copy_scheduled, ev.CopyEnded: self._copy_ended,
            ev.TaskQueued: self._task_queued, ev.TaskDequeued: self._task_dequeued,
            ev.TaskStarted: self._task_started,
        }

    # ---- reading -------------------------------------------------------------------------------

    def tasks_of(self, jid: str) -> list[TaskRecord]:
        return [self.tasks[n] for n in self.job_tasks.get(jid, ())]

    def usage_of(self, user: str, band: Band) -> np.ndarray:
        return self.usage.get((user, band), np.zeros(len(DIMS), dtype=np.int64))

    def up_machines(self) -> list[MachineRecord]:
        return [m for m in self.machines.values() if m.state == "up"]

    # ---- applying events ----------------------------------------------------------------------

    def apply(self, event: ev.Event | dict[str, Any]) -> None:
        """Apply one event (typed, or a logged dict of any format version this one reads)."""
        if isinstance(event, dict):
            event = ev.decode(event)
        if event.seq <= self.seq:
            raise ValueError(f"event {event.seq} is not after {self.seq}")
        self.seq = event.seq
        self._appliers[type(event)](event)
        self.estimates.observe(self, event)  # derived from events: a rebuild from the log rebuilds them

    def _transition(self, task: TaskRecord, via: str, event: ev.Event, note: str = "", machine: str | None = None,
                    uncharge: bool = True) -> None:  # uncharge=False: the caller charges a batch (quota_accounts.py)
        old = task.state if task.history else None
        new = next_task_state(task.name, old, via, task.history)
        task.history.append(Transition(event.seq, event.cmd, via, old.value if old else None, new.value,
                                       event.t, note, machine or (task.machine if old is R else None)))
        if old is R and (new is not R):
            self.view.remove(task.name)
            self._drop_copy(task.name)
            self._leave_alloc(task)
            task.machine, task.gpus, task.request, task.ports, task.reclaimed = None, (), None, (), False
        self._moved(task.job, old, new)
        if new is D and old is not D and uncharge:
            self._uncharge(task)
        task.state = new
        if new is P:
            self._now_pending(task.name)
        else:
            self._not_pending(task)

    def _now_pending(self, name: str) -> None:
        if name not in self.pending:
            self.pending[name] = None
            self.observer.pending_added(name)

    def _not_pending(self, task: TaskRecord) -> None:
        if self.pending.pop(task.name, _GONE) is not _GONE:
            self.observer.pending_removed(task.name)
            if self.machine_queues:
                self.machine_queues.task_left_pending(task.name)

    def _task_queued(self, event: ev.TaskQueued) -> None:
        task = self.tasks[event.task]
        if task.state is not P:
            raise TransitionError(f"task {task.name} is {task.state.value}; only a pending task can be queued")
        if self.machines[event.machine].state != "up":
            raise TransitionError(f"machine {event.machine} is not up; task {task.name} cannot queue there")
        self.machine_queues.add(QueuedCopy(event.task, event.machine, event.generation, event.t,
                                           event.expected_wait_s))

    def _task_dequeued(self, event: ev.TaskDequeued) -> None:
        if self.machine_queues.remove(event.task, event.machine) is None:
            raise TransitionError(f"task {event.task} is not queued on {event.machine}")

    def _task_started(self, event: ev.TaskStarted) -> None:
        self.tasks[event.task].started_generation = event.generation  # its start-up cost is known (estimates.py)

    def _moved(self, job: str, old: TaskState | None, new: TaskState) -> None:
        live = self.job_live.get(job)
        if live is None:
            live = self.job_live[job] = [0, 0]
        if old is P:
            live[0] -= 1
        elif old is R:
            live[1] -= 1
        if new is P:
            live[0] += 1
        elif new is R:
            live[1] += 1

    def _job_follows(self, job: JobRecord, via: str, event: ev.Event, note: str = "") -> None:
        """A job's state follows its tasks: running if any runs, pending if any waits; once none
        lives, how the last one left decides how the job ended (``job_end_state``)."""
        pending, running = self.job_live.get(job.id, (0, 0))
        old = job.state if job.history else None
        if running or pending:
            new = JobState.RUNNING if running else JobState.PENDING
        else:
            new = old if old is not None and old.ended else job_end_state(via)
        if old is new and via != "update":
            return
        check_job_transition(job.id, old, new, via, job.history)
        job.history.append(Transition(event.seq, event.cmd, via, old.value if old else None, new.value,
                                      event.t, note))
        if new.ended and not (old is not None and old.ended):
            self.waiting.discard(job.id)
        job.state = new

    def _new_task(self, job: JobRecord, index: int, event: ev.Event, opportunistic: bool = False, charged=True) -> None:
        """Task ``index`` of ``job`` comes into being (charged, unless ``opportunistic``); a dead task of
        the same name (an earlier incarnation of the job) is replaced and its story goes on."""
        name = task_name(index, job.name, job.user, self.cell)
        previous = self.tasks.get(name)
        if previous is not None and previous.state is not D:
            raise TransitionError(f"task {name} already exists and is {previous.state.value}")
        task = TaskRecord(name, job.id, index, version=job.version, opportunistic=event.seq if opportunistic else 0)
        self._charge_new(task, job, charged)
        if previous is not None:
            task.history, task.generation = previous.history, previous.generation
        task.history.append(Transition(event.seq, event.cmd, "submit", None, P.value, event.t))
        self.tasks[name] = task
        self._moved(job.id, previous.state if previous is not None else None, P)
        self._now_pending(name)
        if previous is None:  # an earlier incarnation is on the job's list already
            self.job_tasks[job.id].append(name)

    def _machine_registered(self, event: ev.MachineRegistered) -> None:
        d = event.machine
        record = MachineRecord(d["name"], Resources(**d["capacity"]), d.get("gpu_model", ""),
                               dict(d.get("attributes", {})), d.get("address", ""), d.get("isolation", ""),
                               "up", event.seq)
        old = self.machines.get(record.name)
        if old is not None:
            record.last_seen, record.incarnation = old.last_seen, old.incarnation
        self.machines[record.name] = record
        if old is None:
            # A machine new to the cell runs nothing, so no task can stop fitting: build the view once,
            # when it is next read, not once per registration (a cell of 10,000 machines registers
            # in O(machines), not O(machines^2)).
            self._view_stale = True
        else:
            self._rebuild_view(event)

    def _machine_lost(self, event: ev.MachineLost) -> None:
        machine = self.machines[event.machine]
        self._lose_copies_on(machine.name)
        for task in [t for t in self.tasks.values() if t.machine == machine.name and t.state is R]:
            self._transition(task, "lost", event, f"machine {machine.name} stopped answering")
            self._job_follows(self.jobs[task.job], "lost", event)
        machine.state = "lost"
        self.machine_queues.machine_gone(machine.name)
        self._rebuild_view(event)

    @property
    def view(self) -> CellView:
        if self._view_stale:
            self._rebuild_view(None)
        return self._view

    def _rebuild_view(self, event: ev.Event | None) -> None:
        """A new view of the up machines with every running task placed again; a running task that
        no longer fits (its machine shrank or is gone) is evicted back to pending."""
        self._view_stale = False
        self._view = CellView([m.machine() for m in self.up_machines()])
        misfits = []
        for task in self.tasks.values():
            if task.state is not R:
                continue
            at = self.view.index.get(task.machine)
            try:
                if at is None:
                    raise PlacementError(f"machine {task.machine} is not up")
                user = self.jobs[task.job].user
                self.view.place(PlacedTask(task.name, task.job, user, task.request, task.gpus, ports=task.ports,
                                           reclaimed=task.reclaimed), at)
            except PlacementError as e:
                misfits.append((task, str(e)))
        for alloc, why in [(t.name, w) for t, w in misfits if t.name in self.alloc_members]:
            for name in list(self.alloc_members[alloc]):  # its tasks go with it (they hold nothing themselves)
                member = self.tasks[name]
                self.view.remove(name)
                misfits.append((member, f"its alloc {alloc} {why}"))
        self._place_copies(event is not None)
        drains.place_all(self)
        for task, why in misfits:
            if event is None:
                raise InvariantError(f"running task {task.name} does not fit its machine: {why}")
            # It is not in the new view: take it off its machine without view.remove.
            next_task_state(task.name, R, "evict", task.history)
            task.history.append(Transition(event.seq, event.cmd, "evict", R.value, P.value,
                                           event.t, f"no longer fits its machine: {why}", task.machine))
            self._leave_alloc(task)
            self._drop_copy(task.name)
            task.machine, task.gpus, task.request, task.state, task.ports = None, (), None, P, ()
            task.reclaimed = False
            self._moved(task.job, R, P)
            self._now_pending(task.name)
            self._job_follows(self.jobs[task.job], "evict", event)

    def _job_submitted(self, event: ev.JobSubmitted) -> None:
        # The core hands over the JobSpec it validated; a replayed log parses the spec again.
        spec = event.parsed or parse_job_spec(event.spec)
        jid = event.job
        old = self.jobs.get(jid)
        if old is not None and not old.state.ended:
            raise TransitionError(f"job {jid} is already {old.state.value}")
        job = JobRecord(jid, spec, event.spec, submitted_seq=event.seq, submitted_at=event.t,
                        request_id=event.request_id)
        note = ""
        if old is not None:  # an earlier incarnation of the job ended: its story goes on
            job.history, note = old.history, "submitted again"
            job.version = old.version + 1
            job.request = None
            job.__post_init__()
        self.jobs[jid] = job
        if event.request_id:
            self.requests[f"{spec.user}/{event.request_id}"] = jid
        self.charged[jid] = 0
        regular = spec.tasks - getattr(event, "opportunistic", 0)  # an alloc set's allocs are all regular
        for index in range(spec.tasks):  # charged at once below (a 100,000-task job: one sum)
            self._new_task(job, index, event, index >= regular, charged=False)
        self._count(job, regular)
        check_job_transition(jid, None, JobState.PENDING, "submit", job.history)
        job.history.append(Transition(event.seq, event.cmd, "submit", None, JobState.PENDING.value, event.t, note))
        job.state = JobState.PENDING
        if spec.after is not None:
            self.waiting.add(jid)

    def _task_scheduled(self, event: ev.TaskScheduled) -> None:
        task = self.tasks[event.task]
        job = self.jobs[task.job]
        gpus = tuple(event.gpus)
        request = job.request_of_task(task)
        at = self.view.index[event.machine]
        if event.alloc is not None:
            alloc = self.tasks.get(event.alloc)
            if alloc is None or alloc.state is not R or alloc.machine != event.machine or not self.is_alloc(alloc.name):
                raise PlacementError(f"alloc {event.alloc} is not placed on {event.machine}")
        self.view.place(PlacedTask(task.name, job.id, job.user, request, gpus, ports=tuple(event.ports),
                                   reclaimed=event.reclaimed), at)
        where = f"on {event.machine}" + (f" in alloc {event.alloc}" if event.alloc else "")
        self._transition(task, "schedule", event, where, event.machine)
        task.machine, task.gpus, task.request, task.ports = event.machine, gpus, request, tuple(event.ports)
        task.reclaimed = event.reclaimed
        task.generation, task.version = event.generation, job.version
        if event.alloc is not None:
            self._enter_alloc(task, event.alloc)
        task.reason, task.explanation = "", None
        task.agent, task.agent_next_try_at = None, None
        self._job_follows(job, "schedule", event)

    def _task_ended(self, event: ev.TaskEnded) -> None:
        task = self.tasks[event.task]
        via = event.via
        self._transition(task, via, event, event.note, event.machine)
        job = self.jobs[task.job]
        if via == "restart":
            task.version = job.version
        self._job_follows(job, via, event, event.note)
        if job.id in self.rolling and not self._rolling(job):
            self.rolling.discard(job.id)
        if job.old_specs:
            self._forget_old_specs(job)

    def _forget_old_specs(self, job: JobRecord) -> None:
        """Drop the spec versions no running task of ``job`` still has."""
        used = {t.version for t in self.tasks_of(job.id) if t.state is R}
        job.old_specs = {v: spec for v, spec in job.old_specs.items() if v in used}
        job._requests = {v: r for v, r in job._requests.items() if v in used}
        job._opportunistic = {v: r for v, r in job._opportunistic.items() if v in used or v == job.version}

    def _job_killed(self, event: ev.JobKilled | ev.JobFailed, via: str = "kill") -> None:
        job = self.jobs[event.job]
        self._kill_live(job, event)  # quota_accounts.py
        self._job_follows(job, via, event, event.note)
        self.rolling.discard(job.id)
        self._forget_old_specs(job)

    def _job_failed(self, event: ev.JobFailed) -> None:
        """One of the job's tasks failed for good: its other tasks are killed, the job failed."""
        self._job_killed(event, via="fail")

    def _job_updated(self, event: ev.JobUpdated) -> None:
        job = self.jobs[event.job]
        spec = event.parsed or parse_job_spec(event.spec)
        self._charge(job, -1)
        old_version, old_spec = job.version, job.spec_dict
        running_old = any(t.state is R for t in self.tasks_of(job.id))
        if event.restart and running_old:
            job.old_specs[old_version] = old_spec
        job.spec, job.spec_dict, job.version = spec, event.spec, old_version + 1
        job.max_unavailable = event.max_unavailable
        job.previous_spec, job.rollback = old_spec, event.rollback
        job.request = None
        job.__post_init__()
        self._charge(job, +1)
        for task in self.tasks_of(job.id):
            if task.state is D:
                continue
            if task.index >= spec.tasks:
                self._transition(task, "kill", event, "the job was scaled down")
            elif task.state is P:
                self._transition(task, "update", event)
                task.version = job.version
            elif not event.restart and task.version == old_version:
                # Priority change in place: same machine, same resources, new request. (A task still
                # on an older spec, mid-way through a rolling update, keeps it until it is rolled.)
                placed = self.view.remove(task.name)
                request = job.request_of_task(task)
                self.view.place(PlacedTask(task.name, job.id, job.user, request, placed.gpus, ports=placed.ports,
                                           reclaimed=placed.reclaimed, reserved=placed.reserved),
                                self.view.index[task.machine])
                self._transition(task, "update", event)
                task.request, task.version = request, job.version
            elif event.restart and task.state is R and job.old_specs.get(task.version) == event.spec:
                self._transition(task, "update", event)  # it runs this very spec already (a rollback to it)
                task.version = job.version
        old_count = parse_job_spec(old_spec).tasks
        regular = spec.tasks - event.opportunistic
        for index in range(old_count, spec.tasks):  # scaled up
            self._new_task(job, index, event, opportunistic=index >= regular)
        if event.restart and self._rolling(job):
            self.rolling.add(job.id)
        self._job_follows(job, "update", event)

    def _rolling(self, job: JobRecord) -> bool:
        return any(t.state is R and t.version != job.version for t in self.tasks_of(job.id))

    # ---- checkpoints ---------------------------------------------------------------------------

    def adopt(self, other: "CellState") -> None:
        """Become ``other`` in place, keeping this state's observer: a follower that fell behind a
        checkpoint installs it (Raft's snapshot install) where every holder of this object sees it."""
        observer = self.observer
        self.__dict__.clear()
        self.__dict__.update(other.__dict__)
        self.observer = observer

    def to_dict(self) -> dict[str, Any]:
        """Everything that survives a restart (corral.master.checkpoint)."""
        return state_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CellState":
        """A state from :meth:`to_dict` of this version or an earlier one (corral.master.checkpoint)."""
        state = state_from_dict(cls, d)
        state.estimates.restore(state, d.get("estimates"))  # absent from a checkpoint written before
        return state

    # ---- invariants ------------------------------------------------------------------------------

    def validate(self) -> None:
        """Check every invariant; raise :class:`InvariantError` naming the first one broken."""
        check(self)
        for problem in self.machine_queues.problems(self):
            raise InvariantError(problem)
