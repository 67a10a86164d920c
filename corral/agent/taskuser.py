"""Who a task runs as: the agent's own user, or an unprivileged uid of the job's user.

``run_as`` (``corral agent --run-as``):

* ``agent``: tasks run as the agent's user (the default: an agent that is not root cannot change
  users, and tests and local cells run tasks that read the caller's files);
* ``per-user``: each job user's tasks run as their own unprivileged uid: the local account of that
  name where one exists with a uid of at least 1000 (a person's account), otherwise a uid of
  ``HASHED_BASE + sha256(user) mod HASHED_SPAN`` with the same gid, which needs no entry in
  /etc/passwd and is the same on every agent of the cell without any coordination. A task then
  cannot read another user's task files (each working directory is 0700, owned by its uid),
  signal another user's processes (a different uid), nor read the agent's state (0700, root) or
  the master's files (0600). Two job users whose names hash alike (1 in 16 million) would share
  a uid: :class:`TaskUsers` refuses the second rather than share.

The agent drops privileges with ``setpriv`` (util-linux) in the exec chain, after the task has
joined its cgroup, so the task keeps the pid the agent knows.
"""

from __future__ import annotations

import hashlib
import pwd
import shutil
import threading
from dataclasses import dataclass

RUN_AS = ("agent", "per-user")
HASHED_BASE = 1 << 30  # far above any account range a distribution hands out
HASHED_SPAN = 1 << 24
MIN_LOCAL_UID = 1000
SHARED = "corral-task"  # the identity of a launch that names no user


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


class TaskUsers:
    """``identity(user)`` for each launch: None with ``run_as="agent"``."""

    def __init__(self, run_as: str = "agent"):
        if run_as not in RUN_AS:
            raise TaskUserError(f"run_as: expected one of {', '.join(RUN_AS)}, got {run_as!r}")
        self.run_as = run_as
        self.setpriv = (shutil.which("setpriv") or "") if run_as != "agent" else ""
        if run_as != "agent" and not self.setpriv:
            raise TaskUserError("run_as per-user: needs setpriv (util-linux) on the PATH")
        self._owner: dict[int, str] = {}  # uid -> the job user it was given to
        self._lock = threading.Lock()

    def identity(self, user: str) -> Identity | None:
        if self.run_as == "agent":
            return None
        user = user or SHARED
        found = local_identity(user) or hashed_identity(user)
        with self._lock:
            owner = self._owner.setdefault(found.uid, user)
        if owner != user:
            raise TaskUserError(f"users {owner} and {user} map to the same uid {found.uid}; "
                                f"give one of them a local account")
        return found
