"""The master core: a deterministic, sans-IO state machine.

Commands go in (:mod:`corral.master.commands`); every accepted command
yields *events* (dicts, applied to the :class:`CellState` as they are
emitted, to be made durable by the caller before it acknowledges anything)
and *effects* (start or kill a task on a machine, for the agent transport,
to be delivered only once the events are durable). The core reads time from
the clock it is given and does no I/O.

Scheduling is optimistic (Omega, Borg §3.4): :meth:`MasterCore.snapshot`
hands out a consistent copy of the cell, the scheduler plans on it (the live
master does this without holding its lock), and :meth:`MasterCore.commit`
re-checks each placement against the current state, commits what still fits
and reports the rest as stale, to be planned again (``schedule`` retries a
bounded number of times). Every task left waiting gets a pending reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from corral.model.constraints import Constraint
from corral.model.job import JobState, TaskState
from corral.model.priority import Band, band_of, preemptible_below
from corral.model.resources import QuantityError, Resources, parse_bytes, parse_cpu
from corral.model.spec import JobSpec, SpecError, parse_job_spec
from corral.master.admission import AdmissionError, Quotas, quantity_bounds
from corral.master.clock import Clock, WallClock
from corral.master.commands import (AgentReport, AgentTransport, Effect, Kill, KillTask, MachineDown, MachineUp,
                                    RecordingTransport, RegisterMachine, StartTask, Submit, Tick, Update,
                                    new_command_id)
from corral.master.liveness import RescheduleLimiter, failed_machines, last_machine
from corral.master.records import JobRecord, charge, job_id, spec_to_dict
from corral.master.state import CellState
from corral.sched.cellview import CellView, PlacementError
from corral.sched.plan import Plan
from corral.sched.request import PendingTask, PlacedTask
from corral.sched.scheduler import Scheduler, SchedulerConfig

log = logging.getLogger(__name__)
P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
# Spec fields a running task can take without a restart.
IN_PLACE_FIELDS = {"priority", "tasks"}


@dataclass
class Outcome:
    events: list[dict[str, Any]] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)


@dataclass
class Round:
    """One scheduling round's input: a snapshot of the view and the tasks to place."""

    view: CellView
    pending: list[PendingTask]
    tokens: dict[str, int]  # task -> its transition count at snapshot time (changed means stale)
    # Each machine's version in the live view at snapshot time: a machine still at it when the plan
    # is committed is as the scheduler saw it, so its placements need no second fit check.
    versions: Any = None
    lineage: object = None


class MasterCore:
    def __init__(
        self,
        state: CellState | None = None,
        clock: Clock | None = None,
        transport: AgentTransport | None = None,
        quotas: Quotas | None = None,
        scheduler: Scheduler | None = None,
        cell: str = "local",
        validate: bool = False,
        retries: int = 3,
        poll_interval_s: float = 2.0,
        lost_after_s: float | None = None,
    ):
        self.state = state or CellState(cell)
        self.clock = clock or WallClock()
        self.transport = transport or RecordingTransport()
        self.quotas = quotas or Quotas(None)
        self.scheduler = scheduler or Scheduler(SchedulerConfig())
        self.validate = validate
        self.retries = retries
        self.poll_interval_s = poll_interval_s
        self.lost_after_s = lost_after_s  # None: no link to the agents, machines are never declared lost
        self._out: Outcome | None = None
        self._cmd = ""
        # Lost tasks wait here for their turn to be rescheduled (soft state; see liveness.py).
        self.reschedule = RescheduleLimiter(self.clock)
        # A task the agents gave up on is tried on up to this many machines before it fails.
        self.failover_machines = 3
        self.corrupt = False  # an event failed to apply: restart (rebuild from the log) before trusting the state
        # Parking (soft state): a pending task a round found no room for sits out the following
        # rounds until a machine changed since has room for it at its preemption level (free plus
        # what it may preempt), or ``unpark_after_s`` passed; a round costs O(runnable), not
        # O(pending), however long the queue.
        self.parking = True
        self.unpark_after_s = 300.0
        self._park_keys: dict[str, tuple[Any, int, int]] = {}  # job -> (request, preemptible below, priority)
        self._wake_mark = -1  # highest machine version seen by the last wake check
        self._wake_lineage: object = None
        self._flushed_at = 0.0

    # ---- plumbing ------------------------------------------------------------------------------

    def _begin(self, cmd_id: str) -> Outcome:
        self._out, self._cmd = Outcome(), cmd_id
        return self._out

    def _end(self) -> Outcome:
        out, self._out = self._out, None
        if self.validate:
            self.state.validate()
        return out

    def _emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = {"seq": self.state.seq + 1, "type": type_, "cmd": self._cmd, "t": self.clock.now(), **fields}
        try:
            self.state.apply(event)
        except BaseException:
            # The state may be half-changed: nothing it says can be trusted or persisted any more.
            self.corrupt = True
            raise
        self._out.events.append(event)
        return event

    def deliver(self, effects: list[Effect]) -> None:
        """Hand effects to the agent transport; call only once their events are durable."""
        if effects:
            self.transport.send(effects)

    def handle(self, cmd: Any) -> Outcome:
        """Apply one command. Raises :class:`AdmissionError` (nothing changed) if it is refused."""
        handler: Callable[[Any], None] = {
            Submit: self._submit, Kill: self._kill, Update: self._update,
            RegisterMachine: self._register, AgentReport: self._report, Tick: self._tick,
            MachineDown: self._machine_down, MachineUp: self._machine_up,
        }[type(cmd)]
        self._begin(cmd.id)
        try:
            handler(cmd)
        except BaseException as e:
            # Refusals (AdmissionError) are raised before any event. A bug after some events were
            # applied leaves them on the exception: the caller persists them (memory and log stay
            # equal) but acknowledges nothing.
            if self._out.events:
                log.error("command %s failed after emitting %d events", cmd.id, len(self._out.events))
                e.applied_events = self._out.events  # type: ignore[attr-defined]
            self._out = None
            raise
        return self._end()

    # ---- jobs ----------------------------------------------------------------------------------

    @staticmethod
    def parse_spec(spec: Any) -> JobSpec:
        if isinstance(spec, JobSpec):
            return spec
        try:
            parsed = parse_job_spec(spec)
        except SpecError as e:
            raise AdmissionError(400, e.errors) from None
        except (OverflowError, ValueError) as e:  # a number no quantity parser can hold
            raise AdmissionError(400, [("spec", f"a quantity is out of range ({e})")]) from None
        r = parsed.resources
        errors = quantity_bounds({"cpu": r.cpu, "memory": r.memory, "disk": r.disk}, "resources")
        if errors:
            raise AdmissionError(400, errors)
        return parsed

    def job(self, jid: str) -> JobRecord:
        job = self.state.jobs.get(jid)
        if job is None:
            raise AdmissionError(404, [("job", f"no job {jid}")], "not_found")
        return job

    def job_reply(self, job: JobRecord) -> dict[str, Any]:
        return {"job": job.id, "name": job.name, "user": job.user, "state": job.state.value,
                "version": job.version, "tasks": job.spec.tasks}

    def _finished(self, job: JobRecord) -> bool:
        return job.state is JobState.DEAD and bool(job.history) and job.history[-1].via == "finish"

    def _submit(self, cmd: Submit) -> None:
        spec = self.parse_spec(cmd.spec)
        if cmd.request_id:
            known = self.state.requests.get(f"{spec.user}/{cmd.request_id}")
            if known is not None:
                self._out.reply = {**self.job_reply(self.state.jobs[known]), "duplicate": True}
                return
        jid = job_id(spec.name, spec.user)
        old = self.state.jobs.get(jid)
        if old is not None and old.state is not JobState.DEAD:
            raise AdmissionError(409, [("name", f"job {spec.name} of user {spec.user} already exists and is "
                                                f"{old.state.value}; update it or kill it first")], "conflict")
        if spec.after is not None:
            dep = self.state.jobs.get(job_id(spec.after, spec.user))
            if dep is None:
                raise AdmissionError(422, [("after", f"expected the name of a job of user {spec.user}; "
                                                     f"there is no job {spec.after}")])
            if dep.state is JobState.DEAD and not self._finished(dep):
                raise AdmissionError(422, [("after", f"job {spec.after} ended by {dep.history[-1].via}, "
                                                     "it will never finish")])
        self.quotas.check(spec.user, spec.priority, self.state.usage_of(spec.user, _band(spec)), charge(spec))
        spec_dict = spec_to_dict(spec)
        self.state.hint = (spec_dict, spec)  # spares apply a second validation of the same spec
        self._emit("job_submitted", job=jid, spec=spec_dict, request_id=cmd.request_id)
        self._out.reply = self.job_reply(self.state.jobs[jid])

    def _kill(self, cmd: Kill) -> None:
        job = self.job(cmd.job)
        if job.state is not JobState.DEAD:
            running = [t for t in self.state.tasks_of(job.id) if t.state is R]
            for task in running:
                self._out.effects.append(self._kill_effect(task.name, task.machine, "the job was killed"))
            self._emit("job_killed", job=job.id, note="killed by its user")
            self._reject_dependents()
        self._out.reply = self.job_reply(job)

    def _update(self, cmd: Update) -> None:
        spec = self.parse_spec(cmd.spec)
        if cmd.max_unavailable < 1:
            raise AdmissionError(400, [("max_unavailable", f"expected an integer >= 1, got {cmd.max_unavailable}")])
        job = self.job(job_id(spec.name, spec.user))
        if job.state is JobState.DEAD:
            raise AdmissionError(409, [("name", f"job {job.id} is dead; submit it again instead")], "conflict")
        new = spec_to_dict(spec)
        changed = {k for k in set(new) | set(job.spec_dict) if new.get(k) != job.spec_dict.get(k)}
        if not changed:
            self._out.reply = {**self.job_reply(job), "changed": []}
            return
        if "after" in changed:
            raise AdmissionError(422, [("after", "cannot change the job a job waits for; submit a new job")])
        used = self.state.usage_of(spec.user, _band(spec))
        if _band(spec) == job.band:
            used = used - charge(job.spec)
        self.quotas.check(spec.user, spec.priority, used, charge(spec))
        restart = bool(changed - IN_PLACE_FIELDS)
        for task in self.state.tasks_of(job.id):
            if task.state is R and task.index >= spec.tasks:
                self._out.effects.append(self._kill_effect(task.name, task.machine, "the job was scaled down"))
        self.state.hint = (new, spec)
        self._emit("job_updated", job=job.id, spec=new, restart=restart, max_unavailable=cmd.max_unavailable)
        self.state.unpark(job.id)  # a new request or priority: its parked tasks are worth a new look
        self._park_keys.pop(job.id, None)
        self._roll(job)
        self._out.reply = {**self.job_reply(job), "changed": sorted(changed), "restart": restart}

    def _roll(self, job: JobRecord) -> None:
        """Rolling update: move running tasks of an older spec version to pending, keeping at
        most ``max_unavailable`` of the job's tasks down at once."""
        if job.id not in self.state.rolling:
            return
        tasks = self.state.tasks_of(job.id)
        down = sum(1 for t in tasks if t.state is P)
        budget = job.max_unavailable - down
        for task in sorted((t for t in tasks if t.state is R and t.version != job.version), key=lambda t: t.index):
            if budget <= 0:
                break
            self._out.effects.append(self._kill_effect(task.name, task.machine, f"rolling update to version {job.version}"))
            self._emit("task_ended", task=task.name, via="restart", note=f"rolling update to version {job.version}")
            budget -= 1

    def _reject_dependents(self) -> None:
        for jid in sorted(self.state.waiting):
            job = self.state.jobs[jid]
            if job.spec.after is None or job.state is JobState.DEAD:
                continue
            dep = self.state.jobs.get(job_id(job.spec.after, job.user))
            if dep is not None and dep.state is JobState.DEAD and not self._finished(dep):
                note = f"job {dep.name} it waits for ended by {dep.history[-1].via}"
                for task in self.state.tasks_of(job.id):
                    if task.state is P:
                        self._emit("task_ended", task=task.name, via="reject", note=note)

    # ---- machines and agents ---------------------------------------------------------------------

    def _register(self, cmd: RegisterMachine) -> None:
        errors = []
        if not cmd.name or not set(cmd.name) <= _NAME_CHARS | set(".") or len(cmd.name) > 128:
            errors.append(("name", "expected 1-128 lowercase letters, digits, '.', '-' or '_'"))
        capacity = {}
        # Integers are corral's units (millicores, bytes), as agents send them; strings are
        # quantities people type ("8" cores, "500m", "16Gi").
        for key, parse in (("cpu", parse_cpu), ("memory", parse_bytes), ("disk", parse_bytes)):
            value = cmd.capacity.get(key, 0) if isinstance(cmd.capacity, dict) else 0
            try:
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    capacity[key] = value
                elif isinstance(value, str):
                    capacity[key] = parse(value)
                else:
                    raise QuantityError(f"expected an integer ({'millicores' if key == 'cpu' else 'bytes'}) "
                                        f"or a quantity string, got {value!r}")
            except QuantityError as e:
                errors.append((f"capacity.{key}", str(e)))
        gpu = cmd.capacity.get("gpu", 0) if isinstance(cmd.capacity, dict) else 0
        if isinstance(gpu, bool) or not isinstance(gpu, int) or not 0 <= gpu <= 64:
            errors.append(("capacity.gpu", f"expected a whole number of GPUs 0..64, got {gpu!r}"))
        capacity["gpu"] = gpu if not errors else 0
        errors += quantity_bounds(capacity, "capacity")
        if not isinstance(cmd.capacity, dict):
            errors.append(("capacity", "expected a mapping {cpu, memory, disk, gpu}"))
        elif not capacity.get("cpu") or not capacity.get("memory"):
            errors.append(("capacity", "expected cpu and memory greater than 0"))
        if errors:
            raise AdmissionError(400, errors)
        record = {"name": cmd.name, "capacity": capacity, "gpu_model": cmd.gpu_model,
                  "attributes": dict(sorted((str(k), str(v)) for k, v in cmd.attributes.items())),
                  "address": cmd.address, "isolation": cmd.isolation}
        old = self.state.machines.get(cmd.name)
        same = old is not None and old.state == "up" and {k: v for k, v in old.to_dict().items()
                                                            if k in record} == record
        if not same:
            self._emit("machine_registered", machine=record)
        self.state.machines[cmd.name].last_seen = self.clock.now()
        self._out.reply = {"machine": cmd.name, "poll_interval_s": self.poll_interval_s}

    def _report(self, cmd: AgentReport) -> None:
        machine = self.state.machines.get(cmd.machine)
        if machine is None:
            raise AdmissionError(404, [("machine", f"no machine {cmd.machine}; register it first")], "not_found")
        machine.last_seen = self.clock.now()
        reported = set()
        for status in cmd.tasks:
            name, state = status.get("task_id"), status.get("state")
            reported.add(name)
            task = self.state.tasks.get(name)
            if task is not None and task.state is P and self._readopt(task, cmd.machine, status):
                continue
            if task is None or task.state is not R or task.machine != cmd.machine:
                if state not in ("finished", "failed", "killed"):  # an ended copy has nothing left to kill
                    self._out.effects.append(self._kill_effect(name, cmd.machine, "not assigned to this machine"))
                continue
            if status.get("generation") != task.generation:
                continue
            error = status.get("last_error") or ""
            if state == "finished":
                self._emit("task_ended", task=name, via="finish", note=f"exit code {status.get('exit_code', 0)}")
            elif state == "failed":
                self._failed(task, cmd.machine, error or f"exit code {status.get('exit_code')} after "
                                                         f"{status.get('failures')} failures")
            elif state == "killed":
                self._emit("task_ended", task=name, via="evict", note=error or "killed on its machine")
        self._reject_dependents()
        self._out.reply = {"machine": cmd.machine, "tasks": len(cmd.tasks)}

    def _failed(self, task, machine: str, error: str) -> None:
        """The agent on ``machine`` gave up on ``task``: try another machine first; after
        ``failover_machines`` machines (or every machine up) the task fails with the last error."""
        tried = failed_machines(task.history)
        tried = tried + [machine] if machine not in tried else tried
        up = {m.name for m in self.state.up_machines()}
        if len(tried) < self.failover_machines and not up <= set(tried):
            self._emit("task_ended", task=task.name, via="failover",
                       note=f"failed on {machine}: {error}; it will be tried on another machine")
            return
        where = f"on {len(tried)} machines ({', '.join(tried)})" if len(tried) > 1 else f"on {machine}"
        note = f"failed {where}; last error: {error}"
        self._emit("task_ended", task=task.name, via="fail", note=note)
        job = self.state.jobs[task.job]
        if job.state is not JobState.DEAD:
            # The same task keeps failing wherever it goes: the job has failed; stop the rest of it.
            for other in self.state.tasks_of(job.id):
                if other.state is R:
                    self._out.effects.append(self._kill_effect(other.name, other.machine, f"the job failed: task {task.index} {note}"))
            self._emit("job_failed", job=job.id, note=f"task {task.index} {note}")

    def _readopt(self, task, machine: str, status: dict[str, Any]) -> bool:
        """A task lost with ``machine`` and not rescheduled yet, reported running there again with the
        same generation, is taken back where it runs (no restart). True if it was."""
        record = self.state.machines.get(machine)
        job = self.state.jobs[task.job]
        if (record is None or record.state != "up" or not task.history or task.history[-1].via != "lost"
                or last_machine(task.history) != machine or status.get("generation") != task.generation
                or status.get("state") not in ("starting", "running", "backoff") or task.version != job.version
                or job.request.gpu or self._try_fit(task, machine, (), []) is not None):
            return False
        self.reschedule.discard(task.name)
        self._emit("task_scheduled", task=task.name, machine=machine, gpus=[], generation=task.generation)
        return True

    def _lose_machine(self, machine, reason: str) -> None:
        lost = []
        for task in self.state.tasks.values():
            if task.state is R and task.machine == machine.name:
                task.reason = reason
                lost.append(task.name)
        self._emit("machine_lost", machine=machine.name)
        self.reschedule.add(lost, machine.name)

    def _machine_down(self, cmd: MachineDown) -> None:
        machine = self.state.machines.get(cmd.machine)
        if machine is None:
            raise AdmissionError(404, [("machine", f"no machine {cmd.machine}")], "not_found")
        if machine.state == "up":
            self._lose_machine(machine, cmd.note or f"its machine {machine.name} stopped answering")
        self._out.reply = {"machine": machine.name, "state": machine.state}

    def _machine_up(self, cmd: MachineUp) -> None:
        machine = self.state.machines.get(cmd.machine)
        if machine is None:
            raise AdmissionError(404, [("machine", f"no machine {cmd.machine}; register it first")], "not_found")
        if machine.state != "up":
            record = {k: v for k, v in machine.to_dict().items() if k not in ("state", "registered_seq")}
            self._emit("machine_registered", machine=record)
        self._report(AgentReport(cmd.machine, cmd.tasks, cmd.incarnation, id=cmd.id))
        self._out.reply = {**self._out.reply, "state": self.state.machines[cmd.machine].state}

    def _tick(self, cmd: Tick) -> None:
        for jid in sorted(self.state.rolling):
            self._roll(self.state.jobs[jid])
        self._reject_dependents()
        if self.lost_after_s is not None:
            now = self.clock.now()
            for machine in list(self.state.machines.values()):
                if machine.state == "up" and machine.address and now - machine.last_seen > self.lost_after_s:
                    self._lose_machine(machine, f"its machine {machine.name} stopped answering")

    def _kill_effect(self, task: str, machine: str, reason: str) -> KillTask:
        record = self.state.machines.get(machine)
        return KillTask(task, machine, record.address if record else "", reason)

    # ---- scheduling --------------------------------------------------------------------------------

    def waiting_reason(self, job: JobRecord) -> str | None:
        """Why the tasks of ``job`` may not be scheduled yet (ordered jobs), or None."""
        if job.spec.after is None:
            return None
        dep = self.state.jobs.get(job_id(job.spec.after, job.user))
        if dep is None:
            return f"waiting for job {job.spec.after}, which does not exist"
        if self._finished(dep):
            return None
        return f"waiting for job {job.spec.after} to finish (it is {dep.state.value})"

    def snapshot(self, only: set[str] | None = None) -> Round:
        """A consistent copy of the cell and the tasks to plan (all pending, or those in ``only``)."""
        pending = []
        tokens = {}
        reasons: dict[str, str | None] = {}
        self.reschedule.release(lambda n: n in self.state.pending)
        held = self.reschedule.positions()
        excluded = False
        self._wake()
        runnable = self.state.runnable
        for name in (list(runnable) if only is None else [n for n in runnable if n in only]):
            task = self.state.tasks[name]
            job = self.state.jobs[task.job]
            if job.id not in reasons:
                reasons[job.id] = self.waiting_reason(job)
            if reasons[job.id] is not None:
                task.reason, task.explanation = reasons[job.id], None
                continue
            if not len(self.state.view):
                task.reason, task.explanation = "0/0 machines are available: the cell has no machines up.", None
                continue
            if name in held:
                task.reason, task.explanation = self.reschedule.describe(name, held[name]), None
                continue
            request = job.request
            tried = failed_machines(task.history) if task.history and task.history[-1].via == "failover" else []
            if tried:  # it failed there: elsewhere first
                request = replace(request, constraints=request.constraints
                                  + (Constraint(MACHINE_ATTRIBUTE, "not_in", tuple(sorted(tried))),))
                excluded = True
            pending.append(PendingTask(name, job.id, job.user, request, task.index, job.submitted_seq))
            tokens[name] = len(task.history)
        live = self.state.view
        view = live.copy()
        if excluded:
            _name_machines(view)
        return Round(view, pending, tokens, live.version.copy(), live.lineage)

    def commit(self, rnd: Round, plan: Plan, cmd_id: str | None = None) -> Outcome:
        """Commit what of ``plan`` is still valid. ``reply["stale"]`` lists the tasks whose
        placement went stale (to plan again); unplaced tasks get their pending reasons."""
        # The plan is made: the snapshot is not read again, so the live view may change its task
        # map in place (no copy of it while the snapshot is open; see CellView.release).
        rnd.view.release()
        self._begin(cmd_id or new_command_id())
        try:
            stale = self._commit(rnd, plan)
        except BaseException as e:
            if self._out.events:
                e.applied_events = self._out.events  # type: ignore[attr-defined]
            self._out = None
            raise
        self._out.reply = {"placed": len(plan.placements) - len(stale), "stale": sorted(stale),
                           "preempted": sum(1 for e in self._out.events if e.get("via") == "evict"),
                           "unplaced": len(plan.unplaced)}
        return self._end()

    def _commit(self, rnd: Round, plan: Plan) -> dict[str, str]:
        state, view = self.state, self.state.view
        victims_of: dict[str, list] = {}
        for p in plan.preemptions:
            victims_of.setdefault(p.by, []).append(p)
        stale: dict[str, str] = {}
        unchanged = (view.version == rnd.versions) if rnd.lineage is view.lineage else None
        for p in plan.placements:
            task = state.tasks.get(p.task_id)
            why = None
            if task is None or task.state is not P or len(task.history) != rnd.tokens.get(p.task_id):
                why = "the task changed while it was being placed"
            elif p.machine not in view.index:
                why = f"machine {p.machine} left the cell"
            else:
                victims = victims_of.get(p.task_id, [])
                for v in victims:
                    victim = state.tasks.get(v.victim)
                    if victim is None or victim.state is not R or victim.machine != p.machine:
                        why = f"preemption victim {v.victim} is no longer on {p.machine}"
                        break
                else:
                    if unchanged is None or not unchanged[view.index[p.machine]]:
                        why = self._try_fit(task, p.machine, p.gpus, [v.victim for v in victims])
            if why is not None:
                stale[p.task_id] = why
                continue
            for v in victims_of.get(p.task_id, []):
                victim = state.tasks[v.victim]
                self._out.effects.append(self._kill_effect(v.victim, p.machine, v.reason))
                self._emit("task_ended", task=v.victim, via="evict", note=v.reason)
                victim.reason = v.reason
            generation = task.generation + 1
            self._emit("task_scheduled", task=task.name, machine=p.machine, gpus=list(p.gpus), generation=generation)
            self._out.effects.append(StartTask(task.name, p.machine, state.machines[p.machine].address,
                                               self.launch(task.name)))
        shared: dict[int, tuple[str, dict]] = {}
        park = []
        for name, explanation in plan.unplaced.items():
            task = state.tasks.get(name)
            if task is None or task.state is not P:
                continue
            key = id(explanation)
            if key not in shared:
                shared[key] = (_readable(explanation.summary()), explanation.to_dict())
            task.reason, task.explanation = shared[key]
            park.append(task)
        if self.parking and park:
            for task in park:
                if task.job not in self._park_keys:
                    request = state.jobs[task.job].request
                    self._park_keys[task.job] = (request.vector, preemptible_below(request.priority),
                                                 request.priority)
            state.park([t.name for t in park])
        for name, why in stale.items():
            task = state.tasks.get(name)
            if task is not None and task.state is P:
                task.reason, task.explanation = f"its placement went stale ({why}); it will be placed again", None
                if task.job in state.parked:  # an earlier round parked it: it is to be planned again now
                    state.unpark(task.job)
                    self._park_keys.pop(task.job, None)
        return stale

    def _wake(self) -> None:
        """Unpark the jobs a machine changed since the last check now has room for (or all of them
        every ``unpark_after_s``, and when the view was rebuilt). Room is a necessary condition only:
        a woken task may still not fit (GPUs, ports, constraints) and is parked again; a task the
        wake budget left out waits for the next change, at most until the flush."""
        state, view = self.state, self.state.view
        mark, self._wake_mark = self._wake_mark, int(view.version.max()) if len(view) else -1
        lineage, self._wake_lineage = self._wake_lineage, view.lineage
        now = self.clock.now()
        if not state.parked:
            self._park_keys.clear()
            self._flushed_at = now
            return
        if lineage is not view.lineage or now - self._flushed_at >= self.unpark_after_s:
            state.unpark()
            self._park_keys.clear()
            self._flushed_at = now
            return
        changed = np.flatnonzero(view.version > mark)
        if not len(changed):
            return
        jobs = list(state.parked)
        keys = [self._park_keys[jid] for jid in jobs]
        shape_of = np.empty(len(jobs), dtype=np.int64)
        copies: list[int] = []  # per (preemption level, request shape): copies the changed machines hold
        for below in sorted({key[1] for key in keys}):
            members = [i for i, key in enumerate(keys) if key[1] == below]
            room = view.available_at(below, changed)  # (changed machines, dims)
            shapes, which = np.unique(np.array([keys[i][0] for i in members]), axis=0, return_inverse=True)
            per_dim = np.where(shapes[:, None, :] > 0, room[None, :, :] // np.maximum(shapes[:, None, :], 1),
                               np.iinfo(np.int64).max)
            shape_of[members] = len(copies) + which.reshape(-1)
            copies.extend(int(c) for c in np.clip(per_dim.min(axis=2), 0, None).sum(axis=1))
        # The room is shared by every shape: a round places about as many tasks as the most copies of
        # one shape it holds. Wake that many, highest priority first (parking order within a priority);
        # their placements change machines, so the next round wakes more if room is left.
        budget = max(copies, default=0)
        for i in sorted(range(len(jobs)), key=lambda i: -keys[i][2]):
            if budget <= 0:
                break
            shape = shape_of[i]
            if copies[shape] <= 0:
                continue
            woken = state.unpark(jobs[i], limit=min(copies[shape], budget))
            copies[shape] -= woken
            budget -= woken
            if jobs[i] not in state.parked:
                del self._park_keys[jobs[i]]

    def _try_fit(self, task, machine: str, gpus: tuple[int, ...], victims: list[str]) -> str | None:
        """Would ``task`` fit on ``machine`` now, once ``victims`` are gone? The view is left as it was."""
        view = self.state.view
        job = self.state.jobs[task.job]
        removed = [view.remove(v) for v in victims]
        at = view.index[machine]
        try:
            view.place(PlacedTask(task.name, job.id, job.user, job.request, tuple(gpus)), at)
        except PlacementError as e:
            return str(e)
        else:
            view.remove(task.name)
            return None
        finally:
            for placed in removed:
                view.place(placed, at)

    def schedule(self, scheduler: Scheduler | None = None) -> Outcome:
        """One scheduling round with bounded retries of stale placements, all in this thread."""
        scheduler = scheduler or self.scheduler
        total = Outcome(reply={"placed": 0, "stale": [], "preempted": 0, "unplaced": 0, "rounds": 0})
        only = None
        for _ in range(1 + self.retries):
            rnd = self.snapshot(only)
            if not rnd.pending:
                break
            plan = scheduler.schedule(rnd.view, rnd.pending)
            out = self.commit(rnd, plan)
            total.events += out.events
            total.effects += out.effects
            total.reply["placed"] += out.reply["placed"]
            total.reply["preempted"] += out.reply["preempted"]
            total.reply["unplaced"] += out.reply["unplaced"]
            total.reply["rounds"] += 1
            total.reply["stale"] = out.reply["stale"]
            if not out.reply["stale"]:
                break
            only = set(out.reply["stale"])
        return total

    def launch(self, name: str) -> dict[str, Any]:
        """The TaskLaunch body (docs/agent-protocol.md) for running task ``name``."""
        task = self.state.tasks[name]
        job = self.state.jobs[task.job]
        spec = job.spec
        r: Resources = spec.resources.to_resources()
        return {
            "task_id": name, "generation": task.generation, "name": name, "command": spec.command or "",
            "args": list(spec.args), "env": dict(spec.env), "workdir": spec.workdir,
            "resources": {"cpu": r.cpu, "memory": r.memory, "disk": r.disk, "gpu": r.gpu, "gpu_milli": r.gpu_milli},
            "priority": spec.priority, "appclass": spec.appclass.value, "ports": list(r.ports),
            **({"restart": spec.restart.model_dump()} if spec.restart is not None else {}),
        }

    def assignments(self, machine: str) -> list[str]:
        """The tasks the master wants on ``machine`` (the body of ``PUT /v1/assignments``)."""
        return sorted(t.name for t in self.state.tasks.values() if t.state is R and t.machine == machine)

    # ---- recovery ----------------------------------------------------------------------------------

    @staticmethod
    def rebuild(store, cell: str = "local") -> CellState:
        """The state from the store's latest checkpoint plus the events logged after it."""
        found = store.latest_checkpoint()
        state = CellState.from_dict(found[1]) if found else CellState(cell)
        for event in store.read_since(state.seq):
            state.apply(event)
        return state


MACHINE_ATTRIBUTE = "corral.machine"  # a machine's own name, in snapshots that exclude machines by name


def _readable(summary: str) -> str:
    """A failed-over task's exclusion in words: 'where it failed before (m1)'."""
    return summary.replace(f"constraint {MACHINE_ATTRIBUTE} not in ", "where it failed before ")


def _name_machines(view: CellView) -> None:
    """Give the snapshot ``view`` an attribute holding each machine's name (its own copy of the maps)."""
    import numpy as np

    from corral.sched.cellview import _Vocabulary

    view.attributes = {**view.attributes, MACHINE_ATTRIBUTE: np.arange(len(view), dtype=np.int32)}
    view.vocabularies = {**view.vocabularies, MACHINE_ATTRIBUTE: _Vocabulary(dict(view.index))}


def _band(spec: JobSpec) -> Band:
    return band_of(spec.priority)
