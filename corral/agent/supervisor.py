"""The sans-IO task supervisor: events in, instructions out.

``Supervisor.handle(*events) -> list[Instruction]`` is the whole interface.
It never spawns, signals, sleeps or reads a file; the shell (``runner.py``)
carries the instructions out and feeds back what happened (``Started``,
``Exited``, ``HealthResult`` ...). Time comes only from the ``clock`` it is
handed, so tests drive it with a fake clock and no sleeps.

A task's states are the protocol's: ``starting`` (spawn asked for),
``running`` (a process exists), ``backoff`` (failed, waiting to restart),
and the terminal ``finished`` (exit 0), ``failed`` (gave up after
``restart.max_failures`` failures) and ``killed`` (by the master, by an
assignment that no longer lists it, or evicted on memory pressure).
Stopping a process is not a state: a running task with ``stop`` set has been
sent SIGTERM and gets SIGKILL when ``stop.deadline`` passes. A launch marked
``queued`` (machine queues, Apollo) makes a ``queued`` task: no process yet;
it becomes ``starting`` the moment its limits fit beside the tasks holding
room here (``machine_queue.ready``, checked after every event), or
``killed`` if the master cancels it first.

Every spawn gets a new ``attempt`` number; events about an older attempt are
stale and ignored, so a late exit or health result can never touch a
restarted process.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from corral.agent import machine_queue, opportunistic, startup_cost
from corral.agent.launch import HealthCheck, TaskLaunch

log = logging.getLogger(__name__)

STARTING, RUNNING, BACKOFF, QUEUED = "starting", "running", "backoff", "queued"
FINISHED, FAILED, KILLED = "finished", "failed", "killed"
STATES = (QUEUED, STARTING, RUNNING, BACKOFF, FINISHED, FAILED, KILLED)
TERMINAL = frozenset({FINISHED, FAILED, KILLED})
LIVE = frozenset({STARTING, RUNNING})  # a process exists or is being created
HOLDING = frozenset({STARTING, RUNNING, BACKOFF})  # tasks whose limits a queued task must fit beside

# Why a process is being stopped; decides where the task goes when it exits.
STOP_KILL, STOP_UNHEALTHY, STOP_EVICT, STOP_REPLACE = "kill", "unhealthy", "evicted", "replace"

_stimulus_ids = itertools.count(1)


def _next_id() -> int:
    return next(_stimulus_ids)


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class Event:
    stimulus_id: int = field(default_factory=_next_id, kw_only=True, compare=False)


@dataclass(frozen=True)
class Launch(Event):
    launch: TaskLaunch


@dataclass(frozen=True)
class Kill(Event):
    task_id: str
    reason: str = "killed by the master"


@dataclass(frozen=True)
class Assign(Event):
    """The full set of tasks the master wants here; others are killed, dead ones forgotten."""

    task_ids: frozenset[str]


@dataclass(frozen=True)
class Evict(Event):
    task_id: str
    reason: str


@dataclass(frozen=True)
class Started(Event):
    task_id: str
    attempt: int
    pid: int


@dataclass(frozen=True)
class StartFailed(Event):
    task_id: str
    attempt: int
    error: str


@dataclass(frozen=True)
class Exited(Event):
    """The task's main process ended: ``code`` >= 0 is an exit status, < 0 a signal number, None
    unknown (a process adopted after an agent restart: counted as a failure)."""

    task_id: str
    attempt: int
    code: int | None
    detail: str = ""  # e.g. "killed by the kernel OOM killer at its 64Mi memory limit"
    oom: bool = False  # the kernel's OOM killer ended it (its cgroup's oom_kill counter went up)


@dataclass(frozen=True)
class HealthResult(Event):
    task_id: str
    attempt: int
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Tick(Event):
    """Time passed: start due restarts, run due health checks, escalate overdue stops."""


# ---------------------------------------------------------------- instructions


@dataclass(frozen=True)
class Instruction:
    task_id: str


@dataclass(frozen=True)
class Spawn(Instruction):
    attempt: int
    launch: TaskLaunch


@dataclass(frozen=True)
class Signal(Instruction):
    """Send ``signal`` ("TERM" or "KILL") to every process of the attempt."""

    attempt: int
    signal: str


@dataclass(frozen=True)
class CheckHealth(Instruction):
    attempt: int
    check: HealthCheck


@dataclass(frozen=True)
class Relimit(Instruction):
    """Write the live attempt's sandbox limits again from its (changed) launch: an upgrade in place."""

    attempt: int


@dataclass(frozen=True)
class Forget(Instruction):
    """The task is gone from the agent's state; its logs and leftovers may be removed."""


# ---------------------------------------------------------------- state


@dataclass
class Stop:
    reason: str
    why: str
    deadline: float
    killed: bool = False  # SIGKILL sent
    replacement: TaskLaunch | None = None


@dataclass
class TaskRecord:
    launch: TaskLaunch
    state: str = STARTING
    attempt: int = 0
    pid: int | None = None
    exit_code: int | None = None
    failures: int = 0
    restarts: int = 0  # restarts after failures, never reset (failures is, after a long enough run)
    last_error: str = ""
    healthy: bool | None = None
    started_at: float | None = None
    restart_at: float | None = None
    stop: Stop | None = None
    health_failures: int = 0
    next_health_at: float | None = None
    health_in_flight: bool = False
    oom_kills: int = 0  # attempts the kernel's OOM killer ended, never reset
    spawn_asked_at: float | None = None  # when its first spawn was asked for (startup_cost.py)
    startup_s: float | None = None  # what its first start cost here (startup_cost.py)
    story: deque = field(default_factory=lambda: deque(maxlen=50))

    @property
    def task_id(self) -> str:
        return self.launch.task_id


class InvalidTransition(RuntimeError):
    """A transition the table does not allow; the message carries the task's story."""


def _fail(rec: "TaskRecord", now: float) -> str:
    if rec.started_at is not None and now - rec.started_at >= rec.launch.restart.reset_after_s:
        rec.failures = 0  # it ran long enough: an old failure no longer counts towards giving up
    rec.failures += 1
    if rec.failures >= rec.launch.restart.max_failures:
        return FAILED
    rec.restart_at = now + rec.launch.restart.delay(rec.failures)
    return BACKOFF


# (from, to) pairs that may happen. Replacing a task with a new generation
# creates a new record, so it is not a transition.
TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (STARTING, RUNNING),
        (STARTING, BACKOFF),
        (STARTING, FAILED),
        (STARTING, KILLED),
        (RUNNING, FINISHED),
        (RUNNING, BACKOFF),
        (RUNNING, FAILED),
        (RUNNING, KILLED),
        (BACKOFF, STARTING),
        (BACKOFF, KILLED),
        (QUEUED, STARTING),
        (QUEUED, KILLED),
    }
)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "ended with an unknown status (it ran on from before the agent restarted)"
    if code >= 0:
        return f"exited with code {code}"
    import signal as _signal

    try:
        name = _signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"killed by {name}"


class Supervisor:
    """Per-machine task supervision as a deterministic state machine.

    ``clock()`` returns seconds (any epoch); ``kill_grace_s`` is the time
    between SIGTERM and SIGKILL. ``validate=True`` checks invariants after
    every event (tests turn it on). ``capacity`` (corral units, ``cpu`` and
    ``memory``) is what queued tasks must fit in; None: a queued task starts
    only when nothing else holds room.
    """

    def __init__(self, clock: Callable[[], float], kill_grace_s: float = 10.0, validate: bool = False,
                 capacity: dict[str, int] | None = None):
        self.clock = clock
        self.kill_grace_s = kill_grace_s
        self.validate = validate
        self.capacity = capacity
        self.tasks: dict[str, TaskRecord] = {}
        self.queue: list[str] = []  # queued tasks, first come first served

    # ------------------------------------------------------------ entry point

    def handle(self, *events: Event) -> list[Instruction]:
        out: list[Instruction] = []
        for event in events:
            handler = getattr(self, "_on_" + type(event).__name__.lower())
            now = self.clock()
            out.extend(handler(event, now))
            if self.queue:
                out.extend(self._start_queued(event))
            if self.validate:
                self.check_invariants()
        return out

    # ------------------------------------------------------------ commands

    def _on_launch(self, ev: Launch, now: float) -> list[Instruction]:
        launch = ev.launch
        rec = self.tasks.get(launch.task_id)
        if rec is not None and opportunistic.is_upgrade(rec.launch, launch):
            rec.launch = launch  # upgraded in place (corral/agent/opportunistic.py): no restart
            rec.story.append((ev.stimulus_id, rec.state, rec.state, f"opportunistic: {launch.opportunistic}"))
            return [Relimit(rec.task_id, rec.attempt)] if rec.state in LIVE else []
        if rec is not None and rec.state == QUEUED:
            if launch.queued and rec.launch.generation == launch.generation:
                return []  # idempotent
            # placed here at once (not queued), or a new generation: out of the queue, then as new
            self.queue.remove(rec.task_id)
            self._transition(rec, KILLED, ev, f"replaced by a launch of generation {launch.generation}")
            return self._create(launch, ev, rec)
        if rec is not None and rec.launch.generation == launch.generation:
            return []  # idempotent
        if rec is not None and rec.state in LIVE:
            if rec.stop is not None:  # already stopping: start the new generation once it is gone
                rec.stop.reason, rec.stop.replacement = STOP_REPLACE, launch
                return []
            return self._stop(rec, now, ev, STOP_REPLACE, f"replaced by generation {launch.generation}", launch)
        return self._create(launch, ev, rec)

    def _create(self, launch: TaskLaunch, ev: Event, previous: TaskRecord | None = None) -> list[Instruction]:
        # Attempts keep counting across generations, so nothing about an old process can match a new one.
        rec = TaskRecord(launch=launch, attempt=previous.attempt + 1 if previous else 1)
        self.tasks[launch.task_id] = rec
        if launch.queued:
            rec.state = QUEUED
            self.queue.append(launch.task_id)
            rec.story.append((ev.stimulus_id, None, QUEUED, f"queued, generation {launch.generation}"))
            log.info("task %s: queued, generation %d (stimulus %d)", launch.task_id, launch.generation,
                     ev.stimulus_id)
            return []
        rec.story.append((ev.stimulus_id, None, STARTING, f"launch generation {launch.generation}"))
        log.info("task %s: launch generation %d (stimulus %d)", launch.task_id, launch.generation, ev.stimulus_id)
        startup_cost.spawning(rec, self.clock())
        return [Spawn(launch.task_id, rec.attempt, launch)]

    def _on_kill(self, ev: Kill, now: float) -> list[Instruction]:
        rec = self.tasks.get(ev.task_id)
        if rec is None or rec.state in TERMINAL:
            return []
        if rec.state == QUEUED:
            self.queue.remove(rec.task_id)
            self._transition(rec, KILLED, ev, f"cancelled in the queue: {ev.reason}")
            return []
        if rec.state == BACKOFF:
            self._transition(rec, KILLED, ev, ev.reason)
            rec.restart_at = None
            return []
        if rec.stop is not None:
            rec.stop.reason, rec.stop.why, rec.stop.replacement = STOP_KILL, ev.reason, None
            return []
        return self._stop(rec, now, ev, STOP_KILL, ev.reason)

    def _on_adopt(self, ev: Event, now: float) -> list[Instruction]:
        from corral.agent.adoption import adopt  # a process found again after an agent restart

        return adopt(self, ev, now)

    def _on_evict(self, ev: Evict, now: float) -> list[Instruction]:
        rec = self.tasks.get(ev.task_id)
        if rec is None or rec.state not in LIVE or rec.stop is not None:
            return []
        return self._stop(rec, now, ev, STOP_EVICT, ev.reason)

    def _on_assign(self, ev: Assign, now: float) -> list[Instruction]:
        out: list[Instruction] = []
        for task_id in sorted(self.tasks):
            if task_id in ev.task_ids:
                continue
            rec = self.tasks[task_id]
            if rec.state in TERMINAL:
                del self.tasks[task_id]
                out.append(Forget(task_id))
            else:
                out.extend(self._on_kill(Kill(task_id, "not in the master's assignments for this machine",
                                              stimulus_id=ev.stimulus_id), now))
        return out

    # ------------------------------------------------------------ what happened

    def _current(self, task_id: str, attempt: int) -> TaskRecord | None:
        rec = self.tasks.get(task_id)
        if rec is None or rec.attempt != attempt:
            return None  # stale: about a process we no longer track
        return rec

    def _on_started(self, ev: Started, now: float) -> list[Instruction]:
        rec = self._current(ev.task_id, ev.attempt)
        if rec is None or rec.state != STARTING:
            return []
        self._transition(rec, RUNNING, ev, f"pid {ev.pid}")
        rec.pid, rec.started_at, rec.exit_code = ev.pid, now, None
        startup_cost.started(rec, now)
        rec.healthy = None
        rec.health_failures, rec.health_in_flight = 0, False
        check = rec.launch.health_check
        rec.next_health_at = now + check.first_delay_s if check else None
        if rec.stop is not None:  # a kill arrived while it was starting
            rec.stop.deadline = now + self.kill_grace_s
            return [Signal(rec.task_id, rec.attempt, "TERM" if self.kill_grace_s > 0 else "KILL")]
        return []

    def _on_startfailed(self, ev: StartFailed, now: float) -> list[Instruction]:
        rec = self._current(ev.task_id, ev.attempt)
        if rec is None or rec.state != STARTING:
            return []
        rec.last_error = ev.error
        return self._ended(rec, ev, now, failed=True, why=f"could not start: {ev.error}")

    def _on_exited(self, ev: Exited, now: float) -> list[Instruction]:
        rec = self._current(ev.task_id, ev.attempt)
        if rec is None or rec.state != RUNNING:
            return []
        rec.exit_code = ev.code
        if ev.oom:
            rec.oom_kills += 1
        what = describe_exit(ev.code) + (f" ({ev.detail})" if ev.detail else "")
        if rec.stop is None:
            if ev.code != 0:
                rec.last_error = what
            return self._ended(rec, ev, now, failed=ev.code != 0, why=what)
        return self._ended(rec, ev, now, failed=rec.stop.reason == STOP_UNHEALTHY, why=what)

    def _ended(self, rec: TaskRecord, ev: Event, now: float, failed: bool, why: str) -> list[Instruction]:
        """The attempt's process is gone (or never existed): decide what comes next."""
        stop, rec.stop = rec.stop, None
        rec.pid, rec.health_in_flight, rec.next_health_at = None, False, None
        if stop is not None and stop.reason == STOP_REPLACE and stop.replacement is not None:
            self._transition(rec, KILLED, ev, f"{why}; {stop.why}")
            return self._create(stop.replacement, ev, rec)
        if stop is not None and stop.reason in (STOP_KILL, STOP_EVICT):
            if stop.reason == STOP_EVICT:
                rec.last_error = stop.why
            self._transition(rec, KILLED, ev, f"{stop.why}; {why}")
            return []
        if not failed:
            self._transition(rec, FINISHED, ev, why)
            return []
        to = _fail(rec, now)
        self._transition(rec, to, ev, f"failure {rec.failures}/{rec.launch.restart.max_failures}: {why}")
        return []

    def _on_healthresult(self, ev: HealthResult, now: float) -> list[Instruction]:
        rec = self._current(ev.task_id, ev.attempt)
        if rec is None or rec.state != RUNNING or rec.launch.health_check is None:
            return []
        rec.health_in_flight = False
        rec.next_health_at = now + rec.launch.health_check.interval_s
        if rec.stop is not None:
            return []
        if ev.ok:
            rec.healthy, rec.health_failures = True, 0
            return []
        rec.health_failures += 1
        threshold = rec.launch.health_check.failures
        if rec.health_failures < threshold:
            return []
        rec.healthy = False
        rec.last_error = f"unhealthy: {threshold} consecutive health checks failed, last: {ev.detail}"
        return self._stop(rec, now, ev, STOP_UNHEALTHY, rec.last_error)

    def _on_tick(self, ev: Tick, now: float) -> list[Instruction]:
        out: list[Instruction] = []
        for task_id in sorted(self.tasks):
            rec = self.tasks[task_id]
            if rec.state == BACKOFF and rec.restart_at is not None and rec.restart_at <= now:
                rec.attempt += 1
                rec.restarts += 1
                rec.restart_at = None
                self._transition(rec, STARTING, ev, f"restart after failure {rec.failures}")
                out.append(Spawn(task_id, rec.attempt, rec.launch))
            elif rec.state == RUNNING and rec.stop is not None:
                if not rec.stop.killed and rec.stop.deadline <= now:
                    rec.stop.killed = True
                    out.append(Signal(task_id, rec.attempt, "KILL"))
            elif (
                rec.state == RUNNING
                and rec.launch.health_check is not None
                and not rec.health_in_flight
                and rec.next_health_at is not None
                and rec.next_health_at <= now
            ):
                rec.health_in_flight = True
                out.append(CheckHealth(task_id, rec.attempt, rec.launch.health_check))
        return out

    def _start_queued(self, ev: Event) -> list[Instruction]:
        """Start the queued tasks that fit now (machine_queue.ready), in queue order."""
        out: list[Instruction] = []
        for task_id in machine_queue.ready(self.queue, self.tasks, self.capacity, HOLDING):
            rec = self.tasks[task_id]
            self.queue.remove(task_id)
            self._transition(rec, STARTING, ev, "room freed: started from the machine queue")
            startup_cost.spawning(rec, self.clock())
            out.append(Spawn(task_id, rec.attempt, rec.launch))
        return out

    # ------------------------------------------------------------ helpers

    def _stop(self, rec: TaskRecord, now: float, ev: Event, reason: str, why: str,
              replacement: TaskLaunch | None = None) -> list[Instruction]:
        rec.stop = Stop(reason=reason, why=why, deadline=now + self.kill_grace_s, replacement=replacement)
        rec.story.append((ev.stimulus_id, rec.state, rec.state, f"stopping ({reason}): {why}"))
        log.info("task %s: stopping (%s): %s (stimulus %d)", rec.task_id, reason, why, ev.stimulus_id)
        if rec.state == STARTING:
            return []  # signalled once it has started
        if self.kill_grace_s <= 0:
            rec.stop.killed = True
            return [Signal(rec.task_id, rec.attempt, "KILL")]
        return [Signal(rec.task_id, rec.attempt, "TERM")]

    def _transition(self, rec: TaskRecord, to: str, ev: Event, why: str) -> None:
        if (rec.state, to) not in TRANSITIONS:
            story = "; ".join(f"#{sid} {a}->{b}: {w}" for sid, a, b, w in rec.story)
            raise InvalidTransition(
                f"task {rec.task_id}: {rec.state} -> {to} is not allowed (stimulus {ev.stimulus_id}, {why}); story: {story}"
            )
        rec.story.append((ev.stimulus_id, rec.state, to, why))
        log.info("task %s: %s -> %s: %s (stimulus %d)", rec.task_id, rec.state, to, why, ev.stimulus_id)
        rec.state = to

    def check_invariants(self) -> None:
        for task_id, rec in self.tasks.items():
            problems = []
            if rec.state not in STATES:
                problems.append(f"unknown state {rec.state!r}")
            if rec.state == RUNNING and rec.pid is None:
                problems.append("running without a pid")
            if rec.state != RUNNING and rec.pid is not None:
                problems.append(f"{rec.state} with pid {rec.pid}")
            if (rec.state == BACKOFF) != (rec.restart_at is not None):
                problems.append(f"{rec.state} with restart_at {rec.restart_at}")
            if rec.state in TERMINAL and rec.stop is not None:
                problems.append(f"{rec.state} while stopping")
            if rec.health_in_flight and rec.state != RUNNING:
                problems.append(f"health check in flight while {rec.state}")
            if rec.failures > max(rec.launch.restart.max_failures, 1):
                problems.append(f"{rec.failures} failures > max {rec.launch.restart.max_failures}")
            if rec.state == FAILED and rec.failures < rec.launch.restart.max_failures:
                problems.append("failed before reaching max_failures")
            if task_id != rec.task_id:
                problems.append(f"filed under {task_id!r}")
            if (rec.state == QUEUED) != (task_id in self.queue):
                problems.append(f"{rec.state} and {'' if task_id in self.queue else 'not '}in the queue")
            if problems:
                story = "; ".join(f"#{sid} {a}->{b}: {w}" for sid, a, b, w in rec.story)
                raise InvalidTransition(f"task {task_id}: {', '.join(problems)}; story: {story}")

    # ------------------------------------------------------------ queries

    def live_tasks(self) -> Iterable[TaskRecord]:
        return (rec for rec in self.tasks.values() if rec.state in LIVE)
