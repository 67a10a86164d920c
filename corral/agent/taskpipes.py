"""A task's stdout and stderr as named pipes that outlive the agent reading them.

Each stream is a FIFO ``<task_dir>/<stream>.fifo``: the task writes its end, the agent's log
pump reads the other into the rotating log files (logs.py). The task also holds a read end it
never reads, so that when the agent is killed its writes do not fail (no SIGPIPE, no EPIPE):
they wait in the pipe (up to about 1 MiB, then the task blocks in write) until the restarted
agent opens the FIFO again (``reopen``) and its pump drains what waited. A task whose agent never
comes back blocks once it has written that much; it outlives its agent, its output does not.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path
from typing import Any

PIPE_BYTES = 2**20  # what a task may write while no agent reads (F_SETPIPE_SZ; the kernel may cap it)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def fifo_path(task_dir: Path, stream: str) -> Path:
    return Path(task_dir) / f"{stream}.fifo"


def open_pipe(task_dir: Path, stream: str) -> tuple[int, int, int]:
    """A fresh FIFO for ``stream``: (the agent's read end, the task's write end, the read end the
    task keeps). All three are close-on-exec; pass the last two to the child (``pass_fds`` makes
    them its own) and close them here once it is started."""
    path = fifo_path(task_dir, stream)
    path.unlink(missing_ok=True)
    os.mkfifo(path, 0o600)
    read = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # so that opening the writer does not block
    try:
        write = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        keep = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        os.close(read)
        raise
    os.set_blocking(read, True)
    try:
        fcntl.fcntl(write, F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:  # over /proc/sys/fs/pipe-max-size for an unprivileged agent: the default 64 KiB
        pass
    return read, write, keep


def spawn(argv: list[str], task_dir: Path, **popen_args: Any) -> tuple[subprocess.Popen, list[int]]:
    """``subprocess.Popen(argv, **popen_args)`` writing stdout and stderr into fresh FIFOs; the
    popen and the agent's read ends (stdout's, stderr's) for the pumps. Raises what Popen raises,
    with every descriptor closed."""
    pipes: list[tuple[int, int, int]] = []
    try:
        for stream in ("stdout", "stderr"):
            pipes.append(open_pipe(task_dir, stream))
        popen = subprocess.Popen(argv, stdout=pipes[0][1], stderr=pipes[1][1], pass_fds=(pipes[0][2], pipes[1][2]),
                                 **popen_args)
    except BaseException:
        for fd in (fd for p in pipes for fd in p):
            os.close(fd)
        raise
    for fd in (fd for p in pipes for fd in p[1:]):  # the task's ends are the task's alone now
        os.close(fd)
    return popen, [p[0] for p in pipes]


def reopen(task_dir: Path, stream: str) -> int | None:
    """A read end of a surviving task's FIFO (a restarted agent's pump), None if there is none."""
    try:
        read = os.open(fifo_path(task_dir, stream), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    os.set_blocking(read, True)
    return read
