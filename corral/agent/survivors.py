"""Tasks that outlive their agent: written down when they start, found again when it restarts.

A task runs in its own session and control group, so a ``kill -9`` of the agent leaves it running.
So that the next agent on the same state directory can take it back, every started attempt is
recorded in ``<state_dir>/tasks/<task_id>/running.json`` (mode 0600: the launch holds the job's
env values): the launch, the attempt, the pid, the pid's start time (``/proc/PID/stat`` field 22)
and the sandbox. The record goes when the attempt's process ends, so a record whose process is
gone only ever names an attempt the agent died before cleaning up after.

On start, :func:`find` reads the records. A process is the recorded one only if its pid is alive,
not a zombie, started at the recorded time (a pid the kernel reused for something else has another
start time) and, under control groups, is a member of the recorded cgroup (the recorded process
outside it, caught before it joined, is killed rather than adopted unsandboxed). A *survivor* is
re-adopted (``Adopt``): the supervisor runs it on as ``running`` under the same pid and attempt,
and the master decides, from the agent's first full report, whether it still wants it there
(it keeps it: no restart) or not (it was moved elsewhere or is no longer wanted: the master
kills it, as it kills any stray copy). Everything else is cleaned up: stale records are removed,
and :func:`sweep` kills the members of every cgroup under the agent's root that no survivor owns
(an attempt the agent died in the middle of starting) and removes those cgroups.

A survivor is not the agent's child: its end is seen through a pidfd (:class:`AdoptedProcess`),
and its exit status is unknown (``Exited.code`` None), which counts as a failure (restarted per its
policy) rather than a success that may not have been one. Its output goes on: its stdout and
stderr are named pipes the new agent opens again (taskpipes.py).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.agent import taskpipes
from corral.agent.isolation import Isolation, Sandbox, limits_for, limits_of
from corral.agent.launch import TaskLaunch
from corral.agent.logs import LogPump, RotatingFile, stream_path
from corral.agent.taskuser import Identity

log = logging.getLogger(__name__)

RECORD = "running.json"


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of the line; fields[0] is field 3 (the state)


@dataclass
class Survivor:
    """A recorded attempt whose process still runs."""

    launch: TaskLaunch
    attempt: int
    pid: int
    started_at: float | None
    box: Sandbox
    workdir: str
    own_workdir: str | None
    identity: Identity | None


def record(task_dir: Path, launch: TaskLaunch, attempt: int, pid: int, started_at: float, box: Sandbox,
           workdir: str, own_workdir: str | None, identity: Identity | None) -> None:
    """Write down a started attempt (atomically: a crash leaves the old record or the new one)."""
    body = {
        "launch": launch.model_dump(mode="json"), "attempt": attempt, "pid": pid, "start_time": start_time(pid),
        "started_at": started_at, "box": {"key": box.key, "dirs": {r: str(d) for r, d in box.dirs.items()}},
        "workdir": workdir, "own_workdir": own_workdir,
        "identity": None if identity is None else {"uid": identity.uid, "gid": identity.gid},
    }
    tmp = task_dir / f".{RECORD}.tmp"
    try:
        task_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f)
        os.replace(tmp, task_dir / RECORD)
    except OSError as e:  # the task runs on; only a restarted agent would not find it
        log.warning("task %s: could not record attempt %d: %s", launch.task_id, attempt, e)


def forget(task_dir: Path, attempt: int) -> None:
    """The attempt's process ended: remove its record (not a newer attempt's)."""
    path = task_dir / RECORD
    try:
        if json.loads(path.read_text()).get("attempt") == attempt:
            path.unlink()
    except (OSError, ValueError):
        pass


def _survivor(body: dict[str, Any], isolation: Isolation) -> Survivor | None:
    launch = TaskLaunch.model_validate(body["launch"])
    pid, attempt = int(body["pid"]), int(body["attempt"])
    box_body = body["box"]
    box = Sandbox(str(box_body["key"]), limits_for(launch), {r: Path(d) for r, d in box_body["dirs"].items()})
    who = body.get("identity")
    identity = None if who is None else Identity(int(who["uid"]), int(who["gid"]))
    survivor = Survivor(launch, attempt, pid, body.get("started_at"), box, str(body["workdir"]),
                        body.get("own_workdir"), identity)
    recorded = body.get("start_time")
    if recorded is None or start_time(pid) != recorded:
        return None  # gone, a zombie, or the pid now belongs to another process
    if box.dirs and pid not in isolation.members(box):
        # The recorded process (its start time says so) outside its cgroup: killed in the moment
        # between its spawn and its joining the cgroup, or moved out. Not adopted unsandboxed.
        log.warning("task %s: its process %d is not in its cgroup %s; killing it", launch.task_id, pid, box.key)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        return None
    return survivor


def find(tasks_dir: Path, isolation: Isolation) -> list[Survivor]:
    """The recorded attempts whose processes still run; every other record is removed, and the
    sandbox of each record that names a dead process is removed with it."""
    found: list[Survivor] = []
    for path in sorted(tasks_dir.glob(f"*/{RECORD}")):
        try:
            body = json.loads(path.read_text())
            survivor = _survivor(body, isolation)
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring the unreadable task record %s: %s", path, e)
            path.unlink(missing_ok=True)
            continue
        if survivor is None:
            log.info("task %s: its recorded process %s is gone", path.parent.name, body.get("pid"))
            path.unlink(missing_ok=True)
            continue
        found.append(survivor)
    return found


def sweep(isolation: Isolation, keep: set[str]) -> list[int]:
    """Kill the members of every cgroup under the agent's root that is not (a parent of) a sandbox
    in ``keep`` and remove those cgroups; the pids killed."""
    roots = getattr(isolation, "roots", {})
    killed: list[int] = []
    for root in set(roots.values()):
        if not root.is_dir():
            continue
        for directory in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            key = directory.relative_to(root).as_posix()
            if key in keep or any(k.startswith(key + "/") for k in keep):
                continue
            box = Sandbox(key, limits_of(0, 0), {"dir": directory})
            pids = isolation.members(box)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            killed += pids
            if not isolation.remove(box):
                log.warning("could not remove the leftover cgroup %s", directory)
    if killed:
        log.warning("killed %d processes of task attempts nobody recorded: %s", len(killed), killed)
    return killed


class AdoptedProcess:
    """The part of ``subprocess.Popen`` the runner uses, for a process that is not this agent's
    child: ``pid``, ``returncode`` (None while it runs, -1 once it ended: its status is unknown, but
    its pid is no longer its own to signal) and ``wait()``, which returns None once it has ended."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except OSError:
            self._fd = None  # already gone

    def wait(self) -> int | None:
        if self._fd is not None:
            try:
                poller = select.poll()
                poller.register(self._fd, select.POLLIN)
                while not poller.poll(1000):
                    pass
            finally:
                os.close(self._fd)
                self._fd = None
        self.returncode = -1
        return None


def adopt_all(runner: Any) -> list[Survivor]:
    """Take back the survivors of ``runner``'s state directory (its ``start()`` calls this, before
    the agent serves): each becomes a supervised ``running`` task with a waiter on its pidfd; the
    cgroups nobody recorded are swept. The survivors adopted."""
    from corral.agent.adoption import Adopt
    from corral.agent.runner import Proc

    if runner.processes is not None:  # hollow agents: nothing real survives them
        return []
    found = find(runner.tasks_dir, runner.isolation)
    sweep(runner.isolation, {s.box.key for s in found})
    for s in found:
        task_id = s.launch.task_id
        if s.launch.alloc is not None and "/" in s.box.key:
            runner.allocs.enter(s.launch.alloc, s.box.key.split("/", 1)[1])  # its alloc's parent again
        env = runner._env(s.launch)
        if s.own_workdir is not None and "HOME" not in s.launch.env:
            env["HOME"] = s.own_workdir
        proc = Proc(task_id, s.attempt, AdoptedProcess(s.pid), s.box, s.workdir, env, [], identity=s.identity,
                    own_workdir=s.own_workdir)
        task_dir = runner.tasks_dir / task_id
        for stream in ("stdout", "stderr"):  # what it wrote while no agent read waits in its pipes
            read = taskpipes.reopen(task_dir, stream)
            sink = RotatingFile(stream_path(task_dir, stream), runner.log_max_bytes, runner.log_keep)
            proc.sinks.append(sink)
            if read is not None:
                pump = LogPump(read, sink, name=f"corral-log-{task_id}-{stream}")
                proc.pumps.append(runner.workers.run(pump.run, pump.name))
        runner.procs[(task_id, s.attempt)] = proc
        runner.submit(Adopt(s.launch, s.attempt, s.pid, s.started_at))
        proc.waiter = runner.workers.run(lambda proc=proc: runner._wait(proc), f"corral-wait-{task_id}")
    if found:
        log.info("adopted %d tasks still running from before the agent restarted: %s", len(found),
                 ", ".join(f"{s.launch.task_id} (pid {s.pid})" for s in found))
    return found
