"""Run one health check: an HTTP GET (healthy on 2xx/3xx) or a command (healthy on exit 0).

Blocking, bounded by the check's ``timeout_s``; never raises. The shell runs
it on a worker thread and feeds the result back to the supervisor.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx

from corral.agent.launch import HealthCheck


def run_check(check: HealthCheck, env: dict[str, str] | None = None, cwd: str | None = None,
              wrap: Callable[[list[str]], list[str]] | None = None) -> tuple[bool, str]:
    """(healthy, what happened in words); ``wrap`` turns a command check's argv into the one to
    execute (to run it as the task's user)."""
    if check.http is not None:
        try:
            response = httpx.get(check.http, timeout=check.timeout_s, follow_redirects=False)
        except httpx.HTTPError as e:
            return False, f"GET {check.http}: {type(e).__name__}: {e}"
        ok = 200 <= response.status_code < 400
        return ok, f"GET {check.http}: HTTP {response.status_code}"
    assert check.command is not None
    argv = list(check.command)
    try:
        done = subprocess.run(
            wrap(argv) if wrap else argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, timeout=check.timeout_s, start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return False, f"{argv[0]}: no answer within {check.timeout_s:g}s"
    except OSError as e:
        return False, f"{argv[0]}: {e.strerror}"
    if done.returncode == 0:
        return True, f"{argv[0]}: exit 0"
    tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] if done.stderr else []
    return False, f"{argv[0]}: exit {done.returncode}" + (f": {tail[0][:200]}" if tail else "")
