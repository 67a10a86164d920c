"""Who a task runs as: never root by default.

``run_as`` (``corral agent --run-as``, ``AgentConfig.run_as``):

* ``auto`` (the default): ``per-user`` when the agent runs as root, ``agent`` otherwise (an agent
  that is not root cannot change users; it says so in its startup log);
* ``per-user``: each job user's tasks run as their own unprivileged uid: the local account of that
  name where one exists with a uid of at least 1000 (a person's account), otherwise a uid of
  ``HASHED_BASE + sha256(user) mod HASHED_SPAN`` with the same gid, which needs no entry in
  /etc/passwd and is the same on every agent of the cell without any coordination. A launch that
  names no user runs as the cell's task account (below). A task then cannot read another user's
  task files (each working directory is 0700, owned by its uid), signal another user's processes
  (a different uid), nor read the agent's state (0700, root) or the master's files (0600). Two
  job users whose names hash alike (1 in 16 million) would share a uid: :class:`TaskUsers`
  refuses the second rather than share;
* ``shared``: every task runs as the cell's task account, ``corral-task`` (``task_user``), a
  system account the agent creates (``useradd --system``) when it is missing. Tasks of different
  users then share one uid: they cannot read the agent's or the master's files, but they can
  signal each other and read what another task leaves world-readable;
* ``agent``: tasks run as the agent's own user, root included (an explicit choice, for tests and
  local cells whose tasks read the caller's files).

The agent drops privileges with ``setpriv`` (util-linux) in the exec chain, after the task has
joined its cgroup, so the task keeps the pid the agent knows.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

RUN_AS = ("auto", "agent", "per-user", "shared")
HASHED_BASE = 1 << 30  # far above any account range a distribution hands out
HASHED_SPAN = 1 << 24
MIN_LOCAL_UID = 1000
TASK_USER = "corral-task"  # the cell's task account: launches that name no user, and run_as=shared
_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")


class TaskUserError(ValueError):
    """A task user that cannot be given its own uid; the message says why."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int

    def wrap(self, argv: list[str], setpriv: str) -> list[str]:
        """``argv`` run as this identity: no supplementary groups, no way back to root."""
        return [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *argv]


def hashed_identity(user: str) -> Identity:
    digest = int.from_bytes(hashlib.sha256(user.encode()).digest()[:8], "big")
    uid = HASHED_BASE + digest % HASHED_SPAN
    return Identity(uid, uid)


def local_identity(user: str) -> Identity | None:
    """The local account ``user`` if it is a person's (uid >= 1000 and not nobody), else None."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    if entry.pw_uid < MIN_LOCAL_UID or entry.pw_name == "nobody":
        return None
    return Identity(entry.pw_uid, entry.pw_gid)


def task_account(name: str = TASK_USER) -> Identity:
    """The system account ``name``, created (``useradd --system``, no home, no login shell) when
    missing. Where it cannot be created (no useradd, a read-only /etc) the name's hashed uid
    stands in, which needs no account. Never root: an account of uid 0 is refused."""
    if not _ACCOUNT.match(name):
        raise TaskUserError(f"task_user: expected a system account name like {TASK_USER}, got {name!r}")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create_account(name)
    if entry is None:
        return hashed_identity(name)
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise TaskUserError(f"task_user: the account {name} has uid {entry.pw_uid} gid {entry.pw_gid}; "
                            f"tasks never run as root")
    return Identity(entry.pw_uid, entry.pw_gid)


def _create_account(name: str) -> pwd.struct_passwd | None:
    useradd = shutil.which("useradd") or next(
        (p for p in ("/usr/sbin/useradd", "/sbin/useradd") if os.access(p, os.X_OK)), None)
    nologin = shutil.which("nologin") or "/bin/false"
    if useradd is not None:
        done = subprocess.run([useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                               "--shell", nologin, name], capture_output=True, text=True, timeout=30)
        if done.returncode not in (0, 9):  # 9: it exists (another agent made it meanwhile)
            log.warning("could not create the task account %s (%s); tasks use its hashed uid",
                        name, done.stderr.strip() or f"exit {done.returncode}")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    log.info("task account %s: uid %d", name, entry.pw_uid)
    return entry


def resolve_run_as(run_as: str, euid: int | None = None) -> str:
    """``auto`` made definite for an agent of ``euid`` (default: this process's)."""
    if run_as not in RUN_AS:
        raise TaskUserError(f"run_as: expected one of {', '.join(RUN_AS)}, got {run_as!r}")
    if run_as != "auto":
        return run_as
    return "per-user" if (os.geteuid() if euid is None else euid) == 0 else "agent"


class TaskUsers:
    """``identity(user)`` for each launch: None where tasks run as the agent's user."""

    def __init__(self, run_as: str = "auto", task_user: str = TASK_USER):
        self.requested = run_as
        self.run_as = resolve_run_as(run_as)
        self.task_user = task_user
        self.setpriv = (shutil.which("setpriv") or "") if self.run_as != "agent" else ""
        if self.run_as != "agent" and not self.setpriv:
            raise TaskUserError(f"run_as {self.run_as}: needs setpriv (util-linux) on the PATH")
        if self.run_as != "agent" and os.geteuid() != 0:
            raise TaskUserError(f"run_as {self.run_as}: needs an agent running as root (it changes the tasks' uids)")
        self._owner: dict[int, str] = {}  # uid -> the job user it was given to
        self._shared: Identity | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        """One line for the agent's startup log."""
        if self.run_as == "per-user":
            return (f"tasks run as their job user's unprivileged uid (run_as per-user); launches naming no "
                    f"user as {self.task_user}")
        if self.run_as == "shared":
            return f"tasks run as the unprivileged account {self.task_user} (run_as shared)"
        if os.geteuid() == 0:
            return "tasks run as root, the agent's own user (run_as agent): a task can read the agent's files"
        why = " (an agent that is not root cannot change users)" if self.requested == "auto" else ""
        return f"tasks run as this agent's user, uid {os.geteuid()}{why}"

    def shared(self) -> Identity:
        with self._lock:
            if self._shared is None:
                self._shared = task_account(self.task_user)
            return self._shared

    def identity(self, user: str) -> Identity | None:
        if self.run_as == "agent":
            return None
        if self.run_as == "shared" or not user:
            return self.shared()
        found = local_identity(user) or hashed_identity(user)
        with self._lock:
            owner = self._owner.setdefault(found.uid, user)
        if owner != user:
            raise TaskUserError(f"users {owner} and {user} map to the same uid {found.uid}; "
                                f"give one of them a local account")
        return found


def passable(path: os.PathLike | str) -> bool:
    """True when any user may pass through every directory from / down to ``path`` (o+x on each),
    so a task of another uid can reach its working directory under it by absolute path."""
    current = os.path.realpath(path)
    while True:
        try:
            if not os.stat(current).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent
