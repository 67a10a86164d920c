"""Starting ``corral master`` as a real process for tests: bound to 127.0.0.1, always stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

import corral

# Subprocesses run from other directories: make them import this checkout's corral, not whatever
# an editable install points at.
REPO = str(Path(corral.__file__).resolve().parents[1])


def child_env(**extra: str) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": REPO + (os.pathsep + path if path else ""), **extra}


class MasterProcess:
    def __init__(self, store: str, tokens: Path, workdir: Path, extra: list[str] | None = None):
        self.store, self.tokens, self.workdir = store, tokens, workdir
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log = workdir / "master.log"

    def start(self, timeout_s: float = 20.0) -> "MasterProcess":
        env = child_env(CORRAL_CONFIG=str(self.workdir / "config.yaml"))
        self._log = open(self.log, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "corral.cli.main", "master", "--store", self.store, "--port", "0",
             "--tokens", str(self.tokens), "--no-write-config", *self.extra],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout_s
        offset = self.log.stat().st_size if self.log.exists() else 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"master exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            found = re.findall(r"serving (http://127\.0\.0\.1:\d+)", self.log.read_text()[offset - 0:])
            if found:
                self.url = found[-1]
                try:
                    if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"master did not start: {self.log.read_text()[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
