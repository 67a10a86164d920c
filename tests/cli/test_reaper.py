"""A child subreaper reaps the orphans it adopts, and leaves its own children's exit status to them.

Each case runs a real subreaper: a child Python process that becomes one, starts its own child
(which it waits for itself) and a shell that leaves an orphaned grandchild behind; the test
watches, with psutil, whether the orphan stays a zombie.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

SUBREAPER = """
import json, subprocess, sys, threading, time
from corral.cli.reaper import Reaper, become_subreaper

assert become_subreaper()
lock = threading.Lock()
own = {}
reaper = Reaper(lambda: own.values(), lock, interval_s=0.05)
if sys.argv[1] == "reap":
    reaper.start()
with lock:
    mine = subprocess.Popen(["sh", "-c", "sleep 0.5; exit 7"])
    own["mine"] = mine.pid
# The shell starts a sleep in the background and exits: the sleep is orphaned and adopted by us.
leaver = subprocess.Popen(["sh", "-c", "sleep 0.3 & echo $!"], stdout=subprocess.PIPE, text=True)
orphan = int(leaver.stdout.readline())
leaver.wait()
print(json.dumps({"orphan": orphan}), flush=True)
code = mine.wait()
print(json.dumps({"own_exit": code}), flush=True)
sys.stdin.read()  # stay alive (holding any zombie) until the test closes our stdin
"""

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="child subreapers are a Linux feature")


def zombie_of(pid: int, parent: int) -> bool:
    """``pid`` is a zombie child of ``parent``."""
    try:
        p = psutil.Process(pid)
        return p.status() == psutil.STATUS_ZOMBIE and p.ppid() == parent
    except psutil.NoSuchProcess:
        return False


def until(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def run_subreaper(mode: str):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SUBREAPER, mode], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        orphan = json.loads(proc.stdout.readline())["orphan"]
        own_exit = json.loads(proc.stdout.readline())["own_exit"]
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc, orphan, own_exit


def test_with_the_reaper_an_exited_orphan_is_reaped_and_its_own_child_keeps_its_exit_status():
    proc, orphan, own_exit = run_subreaper("reap")
    try:
        assert own_exit == 7  # the reaper never took the status of a child its owner waits for
        assert until(lambda: not psutil.pid_exists(orphan) or psutil.Process(orphan).ppid() != proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(10)


def test_without_the_reaper_the_exited_orphan_stays_a_zombie_of_the_subreaper():
    """The case above can fail: the same process without its reaper keeps the zombie."""
    proc, orphan, own_exit = run_subreaper("none")
    try:
        assert own_exit == 7
        assert until(lambda: zombie_of(orphan, proc.pid))
        time.sleep(0.3)  # six of the reaper's intervals
        assert zombie_of(orphan, proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(10)
