"""The shell around the supervisor: it spawns, signals and watches real processes.

``Runner.submit(*events)`` feeds the supervisor under one lock and carries out
every instruction it returns; doing an instruction may produce new events
(``Spawn`` -> ``Started`` or ``StartFailed``), which are fed back in the same
call. Other threads only ever talk to the supervisor through ``submit``:

* one waiter per process (on a reused thread, workers.py): ``wait()`` -> clean up -> ``Exited``;
* a ticker thread: ``Tick`` every ``tick_s``, usage sampling and the memory
  pressure check every ``usage_interval_s``;
* a small pool running health checks -> ``HealthResult``;
* the HTTP API: ``Launch``, ``Kill``, ``Assign``.

Each task runs as its own session (process group) inside its own sandbox
(see ``isolation.py``), with stdout/stderr piped (FIFOs that outlive the agent:
``taskpipes.py``) into rotating log files under ``<state_dir>/tasks/<task_id>/``. When the main process exits, anything
it left behind in its group or cgroup is killed and the cgroup removed.
Nothing a task does (a missing binary, a bad workdir, a crash) raises out of
here: it becomes ``StartFailed`` / ``Exited`` with the error in words.

``processes`` replaces the real processes (spawning and signalling) with another
``ProcessBackend``; ``hollow.py`` passes fake ones that only pretend to run, so
many agents fit in one process for scale tests. Everything else stays the same.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from corral.agent import supervisor as sv
from corral.agent import opportunistic, survivors, taskpipes
from corral.agent.allocs import AllocBoxes
from corral.agent.colocation import ColocationConfig, ColocationPolicy, is_latency_sensitive
from corral.agent.eviction import Candidate, MemoryReading, choose_victims, system_reading
from corral.agent.gpus import gpu_fence, visible_devices
from corral.agent.health import run_check
from corral.agent.isolation import Isolation, Sandbox, limits_for
from corral.agent.launch import TaskLaunch
from corral.agent.logs import LogPump, RotatingFile, stream_path, tail
from corral.agent.workers import Job, Workers
from corral.agent.taskuser import TASK_USER, Identity, TaskUserError, TaskUsers, passable
from corral.agent.throttle import Colocator, LiveTask
from corral.agent.usage import UsageMeter
from corral.model.ports import env_name
from corral.model.resources import format_bytes

log = logging.getLogger(__name__)

BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def os_error_text(error: BaseException) -> str:
    """``No such file or directory: 'nosuchbinary'`` — the protocol's wording for a start failure."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename!r}" if error.filename is not None else error.strerror
    return str(error) or type(error).__name__


def find_executable(command: str, path: str, cwd: str) -> str:
    """Where ``command`` would be executed from, or the OSError exec would raise for it (a task
    started through a wrapper must fail to start the way a direct exec fails, not exit 127 later)."""
    if "/" in command:
        candidates = [command if os.path.isabs(command) else os.path.join(cwd, command)]
    else:
        candidates = [os.path.join(d or ".", command) for d in path.split(os.pathsep)]
    denied = None
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = candidate
    if denied is not None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), command)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command)


class ProcessBackend(Protocol):
    """Where a runner's tasks run, when not as real processes. Called under the runner's lock;
    a task's end must come back later, from another thread, as ``runner.submit(Exited(...))``."""

    def spawn(self, ins: sv.Spawn) -> sv.Event:
        """Start ``ins``: ``Started`` or ``StartFailed``."""

    def signal(self, task_id: str, attempt: int, signal: str) -> None:
        """Send ``"TERM"`` or ``"KILL"`` to the attempt, if it still runs."""


@dataclass
class Proc:
    task_id: str
    attempt: int
    popen: subprocess.Popen
    box: Sandbox
    workdir: str
    env: dict[str, str]
    sinks: list[RotatingFile]
    pumps: list[Job] = field(default_factory=list)
    waiter: Job | None = None
    identity: Identity | None = None  # the uid it runs as; None: the agent's
    own_workdir: str | None = None  # made for this attempt, removed after it


class Runner:
    """Runs the tasks of one machine. ``start()`` before use, ``close()`` to kill everything and clean up."""

    def __init__(
        self,
        state_dir: Path,
        isolation: Isolation,
        clock: Callable[[], float] = time.time,
        kill_grace_s: float = 10.0,
        tick_s: float = 0.1,
        usage_interval_s: float = 1.0,
        memory_pressure_threshold: float = 0.95,
        pressure_source: Callable[[], MemoryReading] = system_reading,
        log_max_bytes: int = 10 * 2**20,
        log_keep: int = 3,
        validate: bool = False,
        processes: ProcessBackend | None = None,
        run_as: str = "auto",
        task_user: str = TASK_USER,
        gpus: int = 0,
        colocation: ColocationConfig | None = None,
        colocation_interval_s: float = 0.2,
        capacity: dict[str, int] | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.users = TaskUsers(run_as, task_user)  # who each task runs as (taskuser.py); never root by default
        self.work_root = self.state_dir / "work"  # per-task working directories of tasks run as their users
        self._own_work_root = False  # made in the temp dir (start()): removed by close()
        self.processes = processes  # None: real processes
        self.gpus = gpus  # this machine's GPU count: each task's devices are fenced to its own
        self.tasks_dir = self.state_dir / "tasks"
        self.isolation = isolation
        self.clock = clock
        self.allocs = AllocBoxes(isolation)
        # capacity: what tasks waiting in the machine queue must fit in (machine_queue.py)
        self.supervisor = sv.Supervisor(clock, kill_grace_s=kill_grace_s, validate=validate, capacity=capacity)
        self.tick_s, self.usage_interval_s = tick_s, usage_interval_s
        self.threshold, self.pressure_source = memory_pressure_threshold, pressure_source
        self.log_max_bytes, self.log_keep = log_max_bytes, log_keep
        self.lock = threading.RLock()
        self.procs: dict[tuple[str, int], Proc] = {}
        self.usage: dict[str, dict[str, int]] = {}
        self.starts = self.start_failures = 0  # processes started, and refused (for /metrics)
        self.meter = UsageMeter()
        self.last_reading: MemoryReading | None = None
        # Batch throttled while latency-sensitive work needs the CPU (colocation.py); None: off.
        self.colocator = (Colocator(ColocationPolicy(colocation, time.monotonic), isolation)
                          if colocation is not None else None)
        self.colocation_interval_s = colocation_interval_s
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="corral-health")
        self.workers = Workers("corral-task")  # each task's waiter and log pumps, on reused threads
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None
        # Sees the statuses of the tasks each submit touched, under the lock; must not block
        # (the agent's Notifier.offer, which tells the master of task changes between polls).
        self.on_status: Callable[[list[dict]], None] | None = None
        # Called once a usage interval, after the usage sample (reclaimed.py keeps CPU quotas there).
        self.tick_hooks: list[Callable[[], object]] = []

    # ------------------------------------------------------------ life cycle

    def start(self) -> "Runner":
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        if self.users.run_as != "agent":
            # the state (logs, per task) is the agent's alone; a task may only pass through to its
            # own working directory (0711: enter, not list)
            os.chmod(self.state_dir, 0o711)
            os.chmod(self.tasks_dir, 0o700)
            if passable(self.state_dir):
                self.work_root.mkdir(mode=0o711, exist_ok=True)
                os.chmod(self.work_root, 0o711)
            else:  # a parent the task's uid cannot pass (a 0700 home): its HOME would be unreachable
                self.work_root = Path(tempfile.mkdtemp(prefix="corral-work-"))
                self._own_work_root = True
                os.chmod(self.work_root, 0o711)
        self.isolation.setup()
        survivors.adopt_all(self)  # tasks a killed agent left running here (survivors.py)
        self._ticker = threading.Thread(target=self._tick_loop, name="corral-ticker", daemon=True)
        self._ticker.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Kill every task (SIGKILL), wait for them, remove their cgroups and the cgroup root."""
        self._closed.set()
        if self._ticker is not None:
            self._ticker.join(timeout_s)
        with self.lock:
            for rec in list(self.supervisor.tasks.values()):
                if rec.state not in sv.TERMINAL:
                    self.submit(sv.Kill(rec.task_id, "the agent is shutting down"))
            procs = list(self.procs.values())
            for proc in procs:
                self._send(proc, signal.SIGKILL)
        for proc in procs:
            if proc.waiter is not None:
                proc.waiter.join(timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._own_work_root:
            shutil.rmtree(self.work_root, ignore_errors=True)
        try:
            self.isolation.teardown()
        except OSError as e:
            log.warning("could not remove the cgroup root: %s", e)

    # ------------------------------------------------------------ the one way in

    def submit(self, *events: sv.Event) -> None:
        with self.lock:
            queue = list(events)
            touched: set[str] = set()
            while queue:
                event = queue.pop(0)
                touched.add(getattr(event, "task_id", None) or getattr(getattr(event, "launch", None), "task_id", ""))
                for instruction in self.supervisor.handle(event):
                    touched.add(instruction.task_id)
                    queue.extend(self._execute(instruction))
            if self.on_status is not None:
                recs = [self.supervisor.tasks[t] for t in sorted(touched) if t in self.supervisor.tasks]
                if recs:
                    self.on_status([self._status(rec) for rec in recs])

    def _execute(self, ins: sv.Instruction) -> list[sv.Event]:
        if isinstance(ins, sv.Spawn):
            if self._closed.is_set():
                return [sv.StartFailed(ins.task_id, ins.attempt, "the agent is shutting down")]
            return [self.processes.spawn(ins) if self.processes is not None else self._spawn(ins)]
        if isinstance(ins, sv.Signal) and self.processes is not None:
            self.processes.signal(ins.task_id, ins.attempt, ins.signal)
            return []
        if isinstance(ins, sv.Signal):
            proc = self.procs.get((ins.task_id, ins.attempt))
            if proc is not None:
                self._send(proc, signal.SIGTERM if ins.signal == "TERM" else signal.SIGKILL)
            return []
        if isinstance(ins, sv.CheckHealth):
            proc = self.procs.get((ins.task_id, ins.attempt))
            env, cwd = (proc.env, proc.workdir) if proc else (None, None)
            identity = proc.identity if proc else None
            wrap = None if identity is None else (lambda argv: identity.wrap(argv, self.users.setpriv))
            if not self._closed.is_set():
                self._pool.submit(self._health, ins, env, cwd, wrap)  # a check runs as its task does
            return []
        if isinstance(ins, sv.Relimit):
            self._relimit(ins)
            return []
        if isinstance(ins, sv.Forget):
            self.usage.pop(ins.task_id, None)
            self.meter.forget(ins.task_id)
            shutil.rmtree(self.tasks_dir / ins.task_id, ignore_errors=True)
            return []
        raise TypeError(f"unknown instruction {ins!r}")

    # ------------------------------------------------------------ processes

    def _env(self, launch: TaskLaunch) -> dict[str, str]:
        env = {k: os.environ[k] for k in BASE_ENV_KEYS if k in os.environ}
        env.setdefault("PATH", DEFAULT_PATH)
        env.update(
            CORRAL_TASK_ID=launch.task_id,
            CORRAL_TASK_NAME=launch.display_name,
            CORRAL_GENERATION=str(launch.generation),
            CORRAL_TASK_COPY=str(launch.copy_number),
            CORRAL_PORTS=",".join(map(str, launch.ports)),
        )
        for i, port in enumerate(launch.ports):
            env[f"CORRAL_PORT{i}"] = str(port)
        for name, port in launch.named_ports.items():
            env[env_name(name)] = str(port)
        env.update(launch.env)
        env.update(visible_devices(launch.gpus, launch.resources.gpu))  # after the job's: not widened
        return env

    def _spawn(self, ins: sv.Spawn) -> sv.Event:
        try:
            event = self._try_spawn(ins)
        except Exception as e:  # e.g. an unwritable state dir: the task fails, the agent goes on
            log.exception("task %s: spawn failed", ins.task_id)
            event = sv.StartFailed(ins.task_id, ins.attempt, f"the agent could not start it: {os_error_text(e)}")
        if isinstance(event, sv.Started):
            self.starts += 1
        else:
            self.start_failures += 1
        return event

    def _try_spawn(self, ins: sv.Spawn) -> sv.Event:
        launch = ins.launch
        task_dir = self.tasks_dir / launch.task_id
        sinks = [RotatingFile(stream_path(task_dir, s), self.log_max_bytes, self.log_keep) for s in ("stdout", "stderr")]
        argv = [launch.command, *launch.args]

        def refuse(error: str) -> sv.Event:
            note = f"corral-agent: cannot start {argv!r} (attempt {ins.attempt}): {error}\n"
            sinks[1].write(note.encode())
            for sink in sinks:
                sink.close()
            log.info("task %s: %s", launch.task_id, note.strip())
            return sv.StartFailed(launch.task_id, ins.attempt, error)

        key = f"{launch.task_id}@{launch.generation}.{ins.attempt}"
        try:
            key = self.allocs.enter(launch.alloc, key)
            limits = limits_for(launch)
            if self.gpus:  # only its GPUs' device nodes open (devices.py), where the isolation can fence
                limits = replace(limits, devices=gpu_fence(launch.gpus, launch.resources.gpu, self.gpus))
            box = self.isolation.create(key, limits)
        except OSError as e:
            self.allocs.leave(key)
            return refuse(f"cannot create the task's {self.isolation.name} sandbox: {os_error_text(e)}")
        workdir = launch.workdir
        env = self._env(launch)
        own_workdir = None
        try:
            identity = self.users.identity(launch.user)
        except TaskUserError as e:
            self.isolation.remove(box)
            return refuse(str(e))
        try:
            if workdir is None and identity is not None:
                workdir = own_workdir = str(self.work_root / key)
                os.makedirs(workdir, mode=0o700)
                os.chown(workdir, identity.uid, identity.gid)
                if "HOME" not in launch.env:
                    env["HOME"] = workdir  # not the agent's
            elif workdir is None:
                workdir = str(task_dir / "work")
                os.makedirs(workdir, exist_ok=True)
            command = argv if identity is None else identity.wrap(argv, self.users.setpriv)
            run, preexec = self.isolation.command(box, command)
            if run is not argv:
                find_executable(argv[0], env.get("PATH", DEFAULT_PATH), workdir)  # as exec would fail
            popen, reads = taskpipes.spawn(run, task_dir, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                           start_new_session=True, close_fds=True, preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            self.isolation.remove(box)
            if own_workdir is not None:
                shutil.rmtree(own_workdir, ignore_errors=True)
            self.allocs.leave(box.key)
            return refuse(os_error_text(e))
        proc = Proc(launch.task_id, ins.attempt, popen, box, workdir, env, sinks, identity=identity,
                    own_workdir=own_workdir)
        for stream, read, sink in zip(("stdout", "stderr"), reads, sinks):
            pump = LogPump(read, sink, name=f"corral-log-{launch.task_id}-{stream}")
            proc.pumps.append(self.workers.run(pump.run, pump.name))
        self.procs[(launch.task_id, ins.attempt)] = proc
        survivors.record(task_dir, launch, ins.attempt, popen.pid, self.clock(), box, workdir, own_workdir, identity)
        proc.waiter = self.workers.run(lambda: self._wait(proc), f"corral-wait-{launch.task_id}")
        return sv.Started(launch.task_id, ins.attempt, popen.pid)

    def _relimit(self, ins: sv.Relimit) -> None:
        """An upgraded task's sandbox gets the CPU weight of its launch now (corral/agent/opportunistic.py)."""
        proc, rec = self.procs.get((ins.task_id, ins.attempt)), self.supervisor.tasks.get(ins.task_id)
        if proc is None or rec is None or self.processes is not None:
            return  # not started here yet: its spawn writes the launch's limits
        try:
            opportunistic.write_weight(self.isolation, proc.box, limits_for(rec.launch))
        except OSError as e:  # the task runs on at its old weight; a later launch tries again
            log.warning("task %s: cannot rewrite its limits: %s", ins.task_id, os_error_text(e))

    def _send(self, proc: Proc, sig: int) -> None:
        if proc.popen.returncode is None:
            try:
                os.killpg(proc.popen.pid, sig)
            except OSError:
                pass
        if sig == signal.SIGKILL:
            self.isolation.kill(proc.box)

    def _wait(self, proc: Proc) -> None:
        code = proc.popen.wait()  # None: a survivor's, whose status is unknown
        detail, oom = "", False
        try:
            detail, oom = self._clean_up(proc, code)
        except Exception:  # never lose the exit: the supervisor must hear of it
            log.exception("task %s: cleaning up after exit failed", proc.task_id)
        with self.lock:
            self.procs.pop((proc.task_id, proc.attempt), None)
            self.submit(sv.Exited(proc.task_id, proc.attempt, code, detail, oom=oom))
        # After the exit is told: waiting for the killed members to leave the cgroup takes a few
        # milliseconds the master need not wait for before it uses the room.
        if not self.isolation.remove(proc.box):
            log.warning("task %s: could not remove its cgroup %s", proc.task_id, proc.box.key)
        self.allocs.leave(proc.box.key)

    def _clean_up(self, proc: Proc, code: int) -> tuple[str, bool]:
        """Kill what the task left behind, flush its logs; say why it died if we know, and whether
        the kernel's OOM killer ended it. (Its cgroup is removed once the exit is told.)"""
        # The task is its main process: whatever it left behind goes with it.
        try:
            os.killpg(proc.popen.pid, signal.SIGKILL)
        except OSError:
            pass
        self.isolation.kill(proc.box)
        detail, oom = "", False
        if code == -signal.SIGKILL and self.allocs.hit_alloc_limit(proc.box):
            oom = True
            parent = self.allocs.parent(proc.box.key)
            detail = f"killed by the kernel OOM killer at its alloc's memory limit of {format_bytes(parent.limits.memory_bytes)}"
        elif code == -signal.SIGKILL and self.isolation.oom_kills(proc.box) > 0:
            oom = True
            detail = f"killed by the kernel OOM killer at its memory limit of {format_bytes(proc.box.limits.memory_bytes)}"
        for pump in proc.pumps:
            pump.join(1.0)
        if detail:
            proc.sinks[1].write(f"corral-agent: {detail}\n".encode())
        for sink in proc.sinks:
            sink.close()
        if proc.own_workdir is not None:
            shutil.rmtree(proc.own_workdir, ignore_errors=True)
        survivors.forget(self.tasks_dir / proc.task_id, proc.attempt)
        return detail, oom

    def _health(self, ins: sv.CheckHealth, env: dict[str, str] | None, cwd: str | None,
                wrap: Callable[[list[str]], list[str]] | None = None) -> None:
        try:
            ok, detail = run_check(ins.check, env, cwd, wrap)
        except Exception as e:  # a bug in a check must not kill the pool thread silently
            ok, detail = False, f"health check error: {e!r}"
        if not self._closed.is_set():
            self.submit(sv.HealthResult(ins.task_id, ins.attempt, ok, detail))

    # ------------------------------------------------------------ periodic work

    def _tick_loop(self) -> None:
        next_usage = next_colocation = 0.0
        while not self._closed.wait(self.tick_s):
            try:
                self.submit(sv.Tick())
                if self.colocator is not None and time.monotonic() >= next_colocation:
                    next_colocation = time.monotonic() + self.colocation_interval_s
                    self.colocate()
                if time.monotonic() >= next_usage:
                    next_usage = time.monotonic() + self.usage_interval_s
                    self.sample_usage()
                    self.check_pressure()
                    for hook in self.tick_hooks:
                        hook()
            except Exception:  # keep ticking: a bad tick must not stop supervision
                log.exception("agent tick failed")

    def sample_usage(self) -> None:
        with self.lock:
            live = [(p.task_id, p.popen.pid, p.box) for p in self.procs.values()]
        samples = {task_id: self.meter.sample(task_id, pid, self.isolation, box) for task_id, pid, box in live}
        with self.lock:
            for task_id in list(self.usage):
                if task_id not in samples:
                    self.usage[task_id] = {"cpu_milli": 0, "memory_bytes": 0}
            self.usage.update(samples)

    def colocate(self) -> None:
        """One colocation step: caps on batch tasks from what the latency-sensitive ones need now."""
        if self.colocator is None or self.processes is not None:
            return
        with self.lock:
            live = [LiveTask(p.task_id, is_latency_sensitive(rec.launch.appclass), rec.launch.resources.cpu, p.box)
                    for p in self.procs.values()
                    if (rec := self.supervisor.tasks.get(p.task_id)) is not None and rec.attempt == p.attempt]
        self.colocator.step(live)

    def check_pressure(self) -> list[str]:
        """Evict from the lowest priority up while machine memory use is over the threshold."""
        reading = self.pressure_source()
        self.last_reading = reading
        with self.lock:
            recs = list(self.supervisor.live_tasks())
            if any(r.stop is not None and r.stop.reason == sv.STOP_EVICT for r in recs):
                return []  # wait for the last eviction to take effect
            candidates = [
                Candidate(r.task_id, r.launch.priority, self.usage.get(r.task_id, {}).get("memory_bytes", 0),
                          r.started_at or 0.0, is_latency_sensitive(r.launch.appclass), r.launch.opportunistic)
                for r in recs if r.stop is None
            ]
            victims = choose_victims(reading, self.threshold, candidates)
            for task_id in victims:
                launch = self.supervisor.tasks[task_id].launch
                self.submit(sv.Evict(task_id, (
                    f"evicted: machine memory pressure ({reading.used_fraction:.0%} of "
                    f"{format_bytes(reading.total_bytes)} in use, threshold {self.threshold:.0%}); "
                    + ("opportunistic work (beyond its user's quota) goes first here" if launch.opportunistic else
                       f"{launch.appclass.value} work at priority {launch.priority} goes first here")
                )))
            return victims

    # ------------------------------------------------------------ queries

    def statuses(self) -> list[dict]:
        with self.lock:
            return [self._status(rec) for _, rec in sorted(self.supervisor.tasks.items())]

    def status(self, task_id: str) -> dict | None:
        with self.lock:
            rec = self.supervisor.tasks.get(task_id)
            return self._status(rec) if rec is not None else None

    def _status(self, rec: sv.TaskRecord) -> dict:
        usage = self.usage.get(rec.task_id) if rec.state == sv.RUNNING else None
        return {
            "task_id": rec.task_id,
            "generation": rec.launch.generation,
            "name": rec.launch.display_name,
            "priority": rec.launch.priority,
            "state": rec.state,
            "pid": rec.pid,
            "exit_code": rec.exit_code,
            "failures": rec.failures,
            "restarts": rec.restarts,
            # Relative, so the master needs no clock shared with this machine.
            "restart_in_s": (round(max(rec.restart_at - self.clock(), 0.0), 3)
                             if rec.restart_at is not None else None),
            "last_error": rec.last_error,
            "healthy": rec.healthy,
            "oom_kills": rec.oom_kills,
            "memory_limit": rec.launch.resources.memory,
            "usage": dict(usage) if usage else {"cpu_milli": 0, "memory_bytes": 0},
            "started_at": rec.started_at,
            "startup_s": rec.startup_s,
            "opportunistic": rec.launch.opportunistic,  # the master upgrades it by sending its launch again  # seconds from the spawn asked for to exec done, first attempt
        }

    def logs(self, task_id: str, stream: str, lines: int) -> str | None:
        with self.lock:
            if task_id not in self.supervisor.tasks:
                return None
        return tail(self.tasks_dir / task_id, stream, lines, keep=self.log_keep)
