"""Finding a dead agent's tasks again: records, pid reuse, cgroup membership, leftover cgroups.

Real processes in real cgroups (and again under rlimit). An agent "dies" here by being abandoned:
its runner is never closed, as after a kill -9 (tests/e2e/test_agent_restart.py kills real ones).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from corral.agent import supervisor as sv
from corral.agent import survivors
from corral.agent.adoption import Adopt
from corral.agent.isolation import RLIMIT, detect, limits_of
from corral.agent.launch import parse_launch
from corral.agent.runner import Runner

from .conftest import pid_alive, wait_until


@pytest.fixture(params=["detected", "rlimit"], ids=["best-isolation-here", "rlimit-fallback"])
def isolation(request, cgroup_root):
    return detect(cgroup_root, prefer=None if request.param == "detected" else RLIMIT)


def launch(task_id: str, *args: str):
    return sv.Launch(parse_launch({"task_id": task_id, "command": "sleep", "args": list(args) or ["600"]}))


def abandon(runner) -> None:
    """What a kill -9 leaves of an agent: its ticker stops; its tasks and records stay."""
    runner._closed.set()
    runner._ticker.join(5)


def test_a_new_runner_on_the_same_state_dir_adopts_the_running_tasks_with_their_pids(make_runner, isolation,
                                                                                      pressure):
    old = make_runner()
    old.submit(launch("a"), launch("b"))
    pids = wait_until(lambda: all(old.status(t)["state"] == "running" for t in "ab")
                      and {t: old.status(t)["pid"] for t in "ab"}, 5, "both running")
    abandon(old)
    new = Runner(old.state_dir, isolation, kill_grace_s=1.0, tick_s=0.02, pressure_source=pressure,
                 validate=True).start()
    try:
        adopted(new, pids)
    finally:
        new.close()
    assert not any(pid_alive(p) for p in pids.values())


def adopted(new, pids) -> None:
    assert {t: new.status(t)["pid"] for t in "ab"} == pids
    assert {new.status(t)["state"] for t in "ab"} == {"running"}
    story = new.supervisor.tasks["a"].story[-1][3]
    assert story.startswith(f"adopted pid {pids['a']}")
    # The new agent supervises them: a kill reaches the very process, and its end is seen.
    new.submit(sv.Kill("a"))
    wait_until(lambda: new.status("a")["state"] == "killed", 5, "a killed")
    assert not pid_alive(pids["a"]) and pid_alive(pids["b"])
    assert not (new.tasks_dir / "a" / survivors.RECORD).exists()


def running(runner, isolation, task_id: str) -> int:
    """The pid of ``task_id`` once it runs in its sandbox (it joins its cgroup just after it starts)."""
    wait_until(lambda: runner.status(task_id)["state"] == "running", 5, "running")
    proc = next(p for p in runner.procs.values() if p.task_id == task_id)
    if proc.box.dirs:
        wait_until(lambda: proc.popen.pid in isolation.members(proc.box), 5, "the task in its cgroup")
    return proc.popen.pid


def test_a_record_whose_pid_now_belongs_to_another_process_is_not_adopted(make_runner, isolation):
    runner = make_runner()
    runner.submit(launch("t"))
    running(runner, isolation, "t")
    path = runner.tasks_dir / "t" / survivors.RECORD
    body = json.loads(path.read_text())
    assert body["pid"] == runner.status("t")["pid"] and body["start_time"] == survivors.start_time(body["pid"])
    assert [s.pid for s in survivors.find(runner.tasks_dir, isolation)] == [body["pid"]]
    body["start_time"] -= 1  # the pid was reused: the process there started at another time
    path.write_text(json.dumps(body))
    assert survivors.find(runner.tasks_dir, isolation) == []
    assert not path.exists()  # a stale record goes


def test_a_live_pid_outside_its_recorded_cgroup_is_not_adopted(make_runner, isolation):
    if isolation.name == RLIMIT:
        pytest.skip("no cgroups to be a member of")
    runner = make_runner()
    runner.submit(launch("t"))
    running(runner, isolation, "t")
    path = runner.tasks_dir / "t" / survivors.RECORD
    body = json.loads(path.read_text())
    stranger = subprocess.Popen(["sleep", "600"])
    try:
        body["pid"], body["start_time"] = stranger.pid, survivors.start_time(stranger.pid)
        path.write_text(json.dumps(body))
        assert survivors.find(runner.tasks_dir, isolation) == []
    finally:
        stranger.kill()
        stranger.wait()


def test_sweep_kills_what_runs_in_a_cgroup_nobody_recorded_and_removes_it(isolation):
    if isolation.name == RLIMIT:
        pytest.skip("no cgroups to sweep")
    isolation.setup()
    try:
        kept = isolation.create("kept@1.1", limits_of(0, 0))
        lost = isolation.create("lost@1.1", limits_of(0, 0))
        procs = []
        for box in (kept, lost):
            argv, _ = isolation.command(box, ["sleep", "600"])
            procs.append(subprocess.Popen(argv))
        wait_until(lambda: isolation.members(kept) and isolation.members(lost), 5, "both in their cgroups")
        killed = survivors.sweep(isolation, {"kept@1.1"})
        assert killed == [procs[1].pid]
        procs[1].wait(5)
        assert procs[0].poll() is None and all(d.exists() for d in kept.dirs.values())
        assert not any(d.exists() for d in lost.dirs.values())
    finally:
        for p in procs:
            p.kill()
            p.wait()
        isolation.teardown()


def test_an_adopted_task_that_ends_counts_as_a_failure_of_unknown_status():
    now = [100.0]
    sup = sv.Supervisor(lambda: now[0], validate=True)
    task = launch("t").launch
    assert sup.handle(Adopt(task, attempt=3, pid=4242, started_at=90.0)) == []
    rec = sup.tasks["t"]
    assert (rec.state, rec.pid, rec.attempt, rec.started_at) == ("running", 4242, 3, 90.0)
    assert sup.handle(sv.Exited("t", 2, None)) == []  # an older attempt: stale
    sup.handle(sv.Exited("t", 3, None))
    assert rec.state == "backoff" and rec.failures == 1
    assert rec.last_error == "ended with an unknown status (it ran on from before the agent restarted)"
    now[0] += 60
    [spawn] = sup.handle(sv.Tick())
    assert isinstance(spawn, sv.Spawn) and spawn.attempt == 4
