"""The master core: a deterministic, sans-IO dispatcher of commands to the master's rooms.

Commands go in (:mod:`corral.master.commands`); every accepted command
yields typed *events* (:mod:`corral.master.events`, applied to the
:class:`CellState` as they are emitted, to be made durable by the caller
before it acknowledges anything) and *effects* (start or kill a task on a
machine, to be delivered only once the events are durable). The core reads
time from the clock it is given and does no I/O.

Each command is one :class:`Step`, handed to the room that knows it:

=================  ================================  ==============================
command            room                              module
=================  ================================  ==============================
Submit             admission, then jobs              admission.py, jobs.py
Kill               jobs                              jobs.py
Update             admission, then rollout           admission.py, rollout.py
Rollback           rollout                           rollout.py
RegisterMachine    admission                         admission.py
AgentReport        reports (failover, re-adoption)   reports.py, failover.py
MachineDown / Up   failover                          failover.py
Tick               rollout, jobs, failover           rollout.py, jobs.py, failover.py
(any, quota freed) opportunistic tasks upgraded      opportunistic.py
UsageReport        reservations (soft state)         reservation_book.py, reservations.py
=================  ================================  ==============================

Scheduling is optimistic (Omega, Borg §3.4): :meth:`snapshot` and
:meth:`commit` (commit.py) around the scheduler, with the pending tasks a
round could not place parked in the unschedulable queue (unschedulable.py);
:meth:`schedule` is the one round both the live master and the simulator run
(rounds.py).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from corral.master import admission, allocs, drains, jobs, opportunistic, rollout, speculation
from corral.master.clock import Clock, WallClock
from corral.master.errors import AdmissionError
from corral.master.commands import (AgentReport, AgentTransport, Kill, MachineDown, MachineUp, RecordingTransport,
                                    RegisterMachine, Rollback, Submit, Tick, Update, UsageReport, new_command_id)
from corral.master.commit import Round, commit, readable, snapshot, try_fit
from corral.master.copies import parse_copy_id
from corral.master.events import MachineRegistered
from corral.master.failover import Failover
from corral.master.machine_queues import queued_reason
from corral.master.queue_placement import MachineQueueConfig, MachineQueues, queued_launch
from corral.master.estimates import CompletionEstimate, attach_completion
from corral.master.matrix_wait import MatrixWait
from corral.master.queue_wait import ExpectedWait
from corral.master.quota import Quotas
from corral.master.records import JobRecord
from corral.master.reports import apply_report
from corral.master.profile_rounds import ProfileRunners
from corral.master.profiles import Profiles
from corral.master.rounds import SchedulingRounds
from corral.master.speculation import SiblingRuntimes
from corral.master.state import CellState
from corral.master.step import Outcome, Step
from corral.master.reservation_book import ReservationBook
from corral.master.unschedulable import UnschedulableQueue
from corral.model.job import TaskState
from corral.model.spec import JobSpec
from corral.sched.plan import Plan
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.speculation import SpeculationConfig

log = logging.getLogger(__name__)

__all__ = ["MasterCore", "Outcome", "Round"]


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
        ids: Callable[[], str] | None = None,
        profiles: Profiles | None = None,
        speculation: SpeculationConfig | None = None,
        machine_queues: MachineQueueConfig | None = None,
        expected_wait: ExpectedWait | None = None,
    ):
        self.state = state or CellState(cell)
        self.clock = clock or WallClock()
        self.transport = transport or RecordingTransport()
        self.quotas = quotas or Quotas(None)
        self.scheduler = scheduler or Scheduler(SchedulerConfig())
        self.validate = validate
        self.speculation = speculation or SpeculationConfig()  # stragglers' copies (corral.master.speculation)
        self._siblings = SiblingRuntimes()  # finished runtimes per job, between ticks
        self.poll_interval_s = poll_interval_s
        self.ids = ids or new_command_id
        self.corrupt = False  # an event failed to apply: restart (rebuild from the log) before trusting the state
        self.failover = Failover(self.clock, lost_after_s=lost_after_s)
        self.failover.watch_failed_over(self.state)
        self.queue = UnschedulableQueue(self.clock)
        self.queue.reset(self.state.pending)
        self.state.observer = self.queue
        self.rounds = SchedulingRounds(self, retries)
        # Scheduler profiles (Omega): the default one is self.scheduler and self.rounds.
        self.profiles = ProfileRunners(self, profiles)
        self._explainer: Scheduler | None = None
        self._drains_seen = 0  # state.drains_released when a round last took a snapshot
        self.reservations = ReservationBook(self.clock)  # from agents' usage reports (soft state)
        # Apollo's machine queues (queue_placement.py); off unless the cell configuration turns them on.
        self.machine_queues = MachineQueues(machine_queues or MachineQueueConfig(),
                                            expected_wait or MatrixWait(self.state, self.clock))
        # the completion-time scorer, where the cell's policy has one, estimates from the master's figures
        attach_completion(self.scheduler, CompletionEstimate(self.state, self.machine_queues.expected_wait,
                                                                 self.clock))
        self._handlers: dict[type, Callable[[Step, Any], None]] = {
            Submit: self._submit, Kill: self._kill, Update: self._update, RegisterMachine: self._register,
            AgentReport: self._report, Tick: self._tick, MachineDown: self.failover.machine_down,
            MachineUp: self._machine_up, UsageReport: self.reservations.report,
            Rollback: lambda step, cmd: rollout.rollback(step, cmd.job),
        }

    # ---- knobs kept where tests and the service expect them --------------------------------------

    @property
    def reschedule(self):
        return self.failover.reschedule

    @reschedule.setter
    def reschedule(self, limiter) -> None:
        self.failover.reschedule = limiter

    @property
    def retries(self) -> int:
        return self.rounds.retries

    @property
    def unpark_after_s(self) -> float:
        return self.queue.flush_after_s

    @unpark_after_s.setter
    def unpark_after_s(self, value: float) -> None:
        self.queue.flush_after_s = value

    @property
    def parking(self) -> bool:
        return self.queue.enabled

    @parking.setter
    def parking(self, value: bool) -> None:
        self.queue.enabled = value

    @property
    def failover_machines(self) -> int:
        return self.failover.failover_machines

    @failover_machines.setter
    def failover_machines(self, value: int) -> None:
        self.failover.failover_machines = value

    # ---- commands ------------------------------------------------------------------------------

    def handle(self, cmd: Any) -> Outcome:
        """Apply one command. Raises :class:`AdmissionError` (nothing changed) if it is refused."""
        return self._run(cmd.id, lambda step: self._handlers[type(cmd)](step, cmd))

    def _run(self, cmd_id: str, work: Callable[[Step], None]) -> Outcome:
        step = Step(self.state, self.clock, cmd_id)
        book = self.state.machine_queues
        book.orphans = []  # copies of tasks that stop waiting in this command: cancelled on their agents
        try:
            work(step)
            if self.state.cancelled:  # copies that went with their tasks: kill them where they run
                speculation.kill_cancelled(step)
            if self.state.draining or self.state.drains_dropped:  # start-first moves (drains.py)
                drains.settle(step)
            if self.state.quota_freed:  # a regular task ended, a job was killed or shrunk
                self._upgrade(step)
            self.machine_queues.cancel_orphans(step, book.orphans)
        except BaseException as e:
            # Refusals (AdmissionError) are raised before any event. A bug after some events were
            # applied leaves them on the exception: the caller persists them (memory and log stay
            # equal) but acknowledges nothing.
            self.corrupt = self.corrupt or step.corrupt
            if step.events:
                log.error("command %s failed after emitting %d events", cmd_id, len(step.events))
                e.applied_events = step.events  # type: ignore[attr-defined]
            raise
        finally:
            book.orphans = None
        if self.validate:
            self.state.validate()
            self.queue.validate(self.state.pending)
        return step.outcome()

    def deliver(self, effects: list) -> None:
        """Hand effects to the agent transport; call only once their events are durable."""
        if effects:
            self.transport.send(effects)

    def _submit(self, step: Step, cmd: Submit) -> None:
        admitted = admission.admit_submit(self.state, self.quotas, cmd)
        if isinstance(admitted, JobRecord):  # the same request id again: the same answer
            step.reply = {**jobs.job_reply(admitted), "duplicate": True}
            return
        unknown = self.profiles.profiles.check_spec(admitted.spec)
        if unknown is not None:
            raise AdmissionError(400, [("scheduler", unknown)])
        jobs.submit(step, admitted, cmd.request_id)

    def _kill(self, step: Step, cmd: Kill) -> None:
        jobs.kill(step, self.job(cmd.job))

    def _update(self, step: Step, cmd: Update) -> None:
        admitted = admission.admit_update(self.state, self.quotas, cmd)
        rollout.update(step, admitted, cmd.max_unavailable)
        if admitted.changed:  # a new request or priority: its parked tasks are worth a new look
            self.queue.unpark(t.name for t in self.state.tasks_of(admitted.job.id))
        if self.state.machine_queues:  # queued launches of the old spec: queued again from the new one
            self.machine_queues.dequeue_job(step, [t.name for t in self.state.tasks_of(admitted.job.id)],
                                            "its job was updated")

    def _register(self, step: Step, cmd: RegisterMachine) -> None:
        record = admission.admit_machine(cmd)
        old = self.state.machines.get(cmd.name)
        same = old is not None and old.state == "up" and {k: v for k, v in old.to_dict().items()
                                                            if k in record} == record
        if not same:
            step.emit(MachineRegistered, machine=record)
        self.state.machines[cmd.name].last_seen = self.clock.now()
        step.reply = {"machine": cmd.name, "poll_interval_s": self.poll_interval_s}

    def _report(self, step: Step, cmd: AgentReport) -> None:
        apply_report(step, cmd, self.failover, self._fits)

    def _machine_up(self, step: Step, cmd: MachineUp) -> None:
        self.failover.machine_back(step, cmd.machine)
        apply_report(step, AgentReport(cmd.machine, cmd.tasks, cmd.incarnation, id=cmd.id), self.failover, self._fits)
        step.reply = {**step.reply, "state": self.state.machines[cmd.machine].state}

    def _tick(self, step: Step, cmd: Tick) -> None:
        rollout.roll_all(step)
        jobs.reject_dependents(step)
        self.failover.lose_silent(step)
        self.failover.fail_stranded(step)
        speculation.speculate(step, self.speculation, self._siblings)
        drains.expire(step)  # start-first moves whose new copies did not report running in time
        self.machine_queues.correct(step)
        self._upgrade(step)  # also a quota raised (a new quota file) since the last look

    def _upgrade(self, step: Step) -> None:
        """Opportunistic tasks whose users' quotas have room again become regular, in place; a parked
        one is looked at again (its request changed)."""
        upgraded = opportunistic.upgrade(step, self.quotas)
        if upgraded:
            self.queue.unpark(upgraded)

    def _fits(self, task: Any, machine: str) -> bool:
        return try_fit(self.state, task, machine, (), []) is None

    # ---- reading -------------------------------------------------------------------------------

    @staticmethod
    def parse_spec(spec: Any) -> JobSpec:
        return admission.parse_spec(spec)

    def job(self, jid: str) -> JobRecord:
        return admission.find_job(self.state, jid)

    @staticmethod
    def job_reply(job: JobRecord) -> dict[str, Any]:
        return jobs.job_reply(job)

    def launch(self, name: str) -> dict[str, Any]:
        """The TaskLaunch body (docs/agent-protocol.md) for running task ``name`` (or a copy of one)."""
        copy = parse_copy_id(name)
        if copy is not None:
            return speculation.copy_launch(self.state, copy[0])
        return allocs.launch(self.state, self.state.tasks[name])

    def assignments(self, machine: str) -> list[str]:
        """The tasks the master wants on ``machine`` (the body of ``PUT /v1/assignments``): what runs
        there, the old copies that drain there (drains.py) and what waits in its queue."""
        return sorted([t.name for t in self.state.tasks.values()
                       if t.state is TaskState.RUNNING and t.machine == machine and not self.state.is_alloc(t.name)]
                      + [c.id for c in self.state.copies.values() if c.machine == machine]
                      + drains.on(self.state, machine)
                      + [c.task for c in self.state.machine_queues.on(machine)])

    def queued_launch(self, name: str, machine: str) -> dict[str, Any]:
        """The launch of pending task ``name``'s copy queued on ``machine`` (sent again if its agent lost it)."""
        copy = self.state.machine_queues.copy(name, machine)
        if copy is None:
            raise KeyError(f"task {name} is not queued on {machine}")
        return queued_launch(self.state, self.state.tasks[name], copy.generation)

    def pending_reason(self, task: Any, top: int | None = None) -> tuple[str, dict[str, Any] | None]:
        """A pending task's reason and its record, true of the cell as it is now: a parked task has its
        class's reason, explained again if the cell changed since it was written (reads only).
        ``top`` (the view's highest machine version) spares a scan per task when asking about many."""
        if task.state is TaskState.PENDING and self.state.machine_queues.copies(task.name):
            task.reason, task.explanation = queued_reason(self.state.machine_queues.copies(task.name),
                                                          self.clock.now()), None
            return task.reason, task.explanation
        if task.state is TaskState.PENDING:
            found = self.queue.reason(task.name, self.state.view, self._explain, top)
            if found is not None:
                task.reason, task.explanation = found
            elif not task.reason and not self.profiles.profiles.single:  # soft state, as every reason
                task.reason = self.profiles.waiting_reason(self.state.jobs[task.job])
        return task.reason, task.explanation

    def _explain(self, request: Any) -> tuple[str, dict[str, Any]]:
        # A scheduler of its own: the live master plans outside its lock, and a scheduler's caches
        # are not for two threads at once.
        if self._explainer is None or self._explainer.config != self.scheduler.config:
            self._explainer = Scheduler(self.scheduler.config)
        explanation = self._explainer.explain(self.state.view, request)
        return readable(explanation.summary()), explanation.to_dict()

    # ---- scheduling ----------------------------------------------------------------------------

    def snapshot(self, only: set[str] | None = None, keep: Callable[[Any], bool] | None = None) -> Round:
        """A consistent copy of the cell and the tasks to plan (all runnable, or those in ``only``, of
        the jobs ``keep`` keeps: a profile's); the cell view is given the reservations that changed
        first (reclamation)."""
        self.reservations.sync(self.state)
        self._drains_seen = self.state.drains_released
        return snapshot(self.state, self.queue, self.failover, only, keep)

    def commit(self, rnd: Round, plan: Plan, cmd_id: str | None = None) -> Outcome:
        """Commit what of ``plan`` is still valid. ``reply["stale"]`` lists the tasks whose
        placement went stale (to plan again); unplaced tasks get their pending reasons."""
        # The plan is made: the snapshot is not read again, so the live view may change its task
        # map in place (no copy of it while the snapshot is open; see CellView.release).
        if rnd.view is not None:  # None: a plan made elsewhere (an external scheduler, plan_api.py)
            rnd.view.release()
        # Reservations that rose since the snapshot reach the view first: a machine they changed is
        # no longer as the plan saw it, so its placements in reclaimed room are checked again.
        self.reservations.sync(self.state)

        def work(step: Step) -> None:
            stale = commit(step, rnd, plan, self.queue)
            queued = self.machine_queues.place(step, [n for n in plan.unplaced if n not in stale])
            step.reply = {**({"queued": queued} if self.machine_queues.config.enabled else {}),
                          "placed": len(plan.placements) - len(stale), "stale": sorted(stale),
                          "preempted": sum(1 for e in step.events if getattr(e, "via", None) == "evict"),
                          "unplaced": len(plan.unplaced)}

        return self._run(cmd_id or self.ids(), work)

    def time_may_change_plan(self) -> bool:
        """Could a round find something new with the state unchanged? (Lost tasks wait their turn
        in time; the unschedulable queue flushes by time; reservations the view was not given yet; an
        old copy of a start-first move gave its room back, drains.py.)"""
        if self.state.drains_released != self._drains_seen:
            return True
        return bool(len(self.failover.reschedule)) or self.queue.flush_due() or self.reservations.changed

    def schedule(self, scheduler: Scheduler | None = None, lock=None,
                 persist: Callable[[Outcome], Any] | None = None, stopped: Callable[[], bool] = lambda: False,
                 profile: str = "default"):
        """The one scheduling round (rounds.py) of scheduler ``profile`` (profile_rounds.py). Without
        ``persist`` (tests), the round's events and effects are gathered into one :class:`Outcome`
        whose reply sums the passes."""
        if persist is not None:
            return self.profiles.run(profile, lock, persist, stopped, scheduler)
        total = Outcome()

        def gather(out: Outcome) -> None:
            total.events += out.events
            total.effects += out.effects

        result = self.profiles.run(profile, lock, gather, stopped, scheduler)
        total.reply = result.reply()
        return total

    # ---- recovery ------------------------------------------------------------------------------

    @staticmethod
    def rebuild(store, cell: str = "local") -> CellState:
        """The state from the store's latest checkpoint plus the events logged after it."""
        found = store.latest_checkpoint()
        state = CellState.from_dict(found[1]) if found else CellState(cell)
        for event in store.read_since(state.seq):
            state.apply(event)
        state.cancelled.clear()  # killed before the restart, or strays the agents' polls will show
        return state

