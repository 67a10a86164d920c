"""Real processes through the runner: start, kill, limits, start failures, restarts, health, eviction."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from corral.agent import supervisor as sv
from corral.agent.isolation import CGROUP_V1, CGROUP_V2, RLIMIT, detect
from corral.agent.launch import parse_launch

from .conftest import pid_alive, wait_until


@pytest.fixture(params=["detected", "rlimit"], ids=["best-isolation-here", "rlimit-fallback"])
def isolation(request, cgroup_root):
    """Every test here runs with the best isolation this machine allows and again with the rlimit fallback."""
    return detect(cgroup_root, prefer=None if request.param == "detected" else RLIMIT)


def launch(task_id: str, command: str, *args: str, **fields):
    return sv.Launch(parse_launch({"task_id": task_id, "command": command, "args": list(args), **fields}))


def state_of(runner, task_id):
    status = runner.status(task_id)
    return status and status["state"]


def test_a_sleep_task_runs_in_its_own_cgroup_and_is_killed_with_its_cgroup_removed(make_runner, isolation):
    runner = make_runner(kill_grace_s=2.0)
    runner.submit(launch("sleeper", "sleep", "60", resources={"cpu": 500, "memory": 64 * 2**20}))
    status = wait_until(lambda: runner.status("sleeper")["state"] == "running" and runner.status("sleeper"))
    pid = status["pid"]
    assert pid_alive(pid)
    (proc,) = runner.procs.values()
    if isolation.name != RLIMIT:
        # The spawned shell joins the cgroups, then execs the task in its place: the same pid, in
        # its cgroup before the task's own code runs (a moment after the spawn returns).
        wait_until(lambda: pid in isolation.members(proc.box), 5, "the task's process to be in its cgroup")
        assert "sleep" in open(f"/proc/{pid}/cmdline").read()
    runner.submit(sv.Kill("sleeper"))
    wait_until(lambda: state_of(runner, "sleeper") == "killed", 5, "the task to be killed")
    assert not pid_alive(pid)
    assert runner.status("sleeper")["exit_code"] == -15, "SIGTERM should be enough for sleep"
    # removed once the exit is told (runner._wait): a moment after the state says killed
    wait_until(lambda: not any(d.exists() for d in proc.box.dirs.values()), 5,
               f"the cgroups {list(proc.box.dirs.values())} to be removed")


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(make_runner):
    runner = make_runner(kill_grace_s=0.3)
    runner.submit(launch("stubborn", "sh", "-c", "trap '' TERM; echo ready; sleep 60 & wait"))
    pid = wait_until(lambda: runner.status("stubborn")["pid"])
    wait_until(lambda: "ready" in runner.logs("stubborn", "stdout", 1), 5, "the trap to be set")
    runner.submit(sv.Kill("stubborn"))
    wait_until(lambda: state_of(runner, "stubborn") == "killed", 5, "SIGKILL after the grace period")
    assert runner.status("stubborn")["exit_code"] == -9
    assert not pid_alive(pid)


def test_a_task_exceeding_its_memory_limit_is_killed_by_the_cgroup(make_runner, isolation, request):
    if isolation.name == RLIMIT and "best-isolation-here" in request.node.callspec.id:
        pytest.skip("no writable cgroup (v1 or v2) on this machine; the rlimit case below still runs")
    runner = make_runner()
    hog = "x = b'x' * (400 * 2**20); print('still alive', flush=True)"
    runner.submit(launch("hog", sys.executable, "-c", hog, resources={"memory": 64 * 2**20},
                         restart={"max_failures": 1}))
    wait_until(lambda: state_of(runner, "hog") == "failed", 10, "the memory limit to stop the hog")
    status = runner.status("hog")
    assert "still alive" not in runner.logs("hog", "stdout", 10)
    if isolation.name == RLIMIT:  # RLIMIT_AS makes the allocation fail instead
        assert status["exit_code"] == 1
        assert "MemoryError" in runner.logs("hog", "stderr", 10)
    else:
        assert status["exit_code"] == -9
        assert "OOM" in status["last_error"] and "64Mi" in status["last_error"]


def test_cpu_weight_favours_latency_sensitive_tasks_over_batch(make_runner, isolation):
    if isolation.name == RLIMIT:
        pytest.skip(f"{isolation.name} isolation has no CPU weights (they need a writable cgroup)")
    runner = make_runner()
    runner.submit(launch("ls", "sleep", "30", appclass="latency-sensitive", resources={"cpu": 1000}),
                  launch("batch", "sleep", "30", appclass="batch", resources={"cpu": 1000}))
    wait_until(lambda: len(runner.procs) == 2)
    boxes = {p.task_id: p.box for p in runner.procs.values()}
    if isolation.name == CGROUP_V2:
        weight = {t: int((b.dirs["unified"] / "cpu.weight").read_text()) for t, b in boxes.items()}
        quota = (boxes["batch"].dirs["unified"] / "cpu.max").read_text().split()
        assert quota == ["100000", "100000"]
    else:
        assert isolation.name == CGROUP_V1
        if "cpu" not in boxes["ls"].dirs:
            pytest.skip("the v1 cpu controller is not writable here")
        weight = {t: int((b.dirs["cpu"] / "cpu.shares").read_text()) for t, b in boxes.items()}
        assert (boxes["batch"].dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "100000"
    assert weight["ls"] >= 10 * weight["batch"]


@pytest.mark.parametrize(
    "case, make_command, workdir, want_error",
    [
        ("a missing binary reports ENOENT naming the binary",
         lambda tmp: "nosuchbinary-corral", None, "No such file or directory: 'nosuchbinary-corral'"),
        ("a working directory that does not exist reports ENOENT naming the directory",
         lambda tmp: "true", "/nonexistent-corral-dir", "No such file or directory: '/nonexistent-corral-dir'"),
        ("a file without execute permission reports EACCES",
         lambda tmp: _not_executable(tmp), None, "Permission denied"),
    ],
)
def test_a_command_that_cannot_start_fails_with_the_os_error(case, make_command, workdir, want_error, make_runner, tmp_path):
    runner = make_runner()
    runner.submit(launch("broken", make_command(tmp_path), workdir=workdir,
                         restart={"max_failures": 2, "backoff_s": 0.05}))
    wait_until(lambda: state_of(runner, "broken") == "failed", 5, "two start failures")
    status = runner.status("broken")
    assert status["failures"] == 2
    assert want_error in status["last_error"]
    assert want_error in runner.logs("broken", "stderr", 10)


def _not_executable(tmp_path):
    path = tmp_path / "script.sh"
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return str(path)


def test_a_crashing_task_is_restarted_with_backoff_and_given_up(make_runner):
    runner = make_runner()
    runner.submit(launch("crash", "sh", "-c", "echo attempt; exit 3",
                         restart={"max_failures": 3, "backoff_s": 0.05, "backoff_max_s": 0.2}))
    wait_until(lambda: state_of(runner, "crash") == "failed", 5, "three failures")
    status = runner.status("crash")
    assert (status["failures"], status["exit_code"], status["last_error"]) == (3, 3, "exited with code 3")
    assert runner.logs("crash", "stdout", 10).count("attempt") == 3


def test_a_task_that_fails_its_health_check_is_restarted_and_that_counts_as_a_failure(make_runner, tmp_path):
    runner = make_runner(kill_grace_s=0.2)
    # Checks start at once, before the shell has touched the file: allow a few failed ones
    # (a loaded machine may take a while to start the task) without a restart.
    check = {"command": ["sh", "-c", "test -e healthy"], "interval_s": 0.05, "timeout_s": 2, "failures": 40}
    runner.submit(launch("svc", "sleep", "60", health_check=check,
                         restart={"max_failures": 2, "backoff_s": 0.05}))
    wait_until(lambda: state_of(runner, "svc") == "failed", 10, "health restarts to exhaust max_failures")
    status = runner.status("svc")
    assert status["failures"] == 2 and status["healthy"] is False
    assert "consecutive health checks failed" in status["last_error"]


def test_a_healthy_service_stays_running_and_is_reported_healthy(make_runner, tmp_path):
    runner = make_runner()
    # Checks start at once, before the shell has touched the file: allow a few failed ones
    # (a loaded machine may take a while to start the task) without a restart.
    check = {"command": ["sh", "-c", "test -e healthy"], "interval_s": 0.05, "timeout_s": 2, "failures": 40}
    runner.submit(launch("svc", "sh", "-c", "touch healthy; exec sleep 60", health_check=check))
    wait_until(lambda: runner.status("svc")["healthy"] is True, 5, "a passing health check")
    assert runner.status("svc")["failures"] == 0


def test_on_memory_pressure_the_lowest_priority_task_is_evicted_first(make_runner, pressure):
    runner = make_runner(kill_grace_s=0.2)
    runner.submit(launch("prod", "sleep", "60", priority=10),
                  launch("batch", "sleep", "60", priority=4),
                  launch("scavenger", "sleep", "60", priority=0))
    wait_until(lambda: len(runner.procs) == 3)
    pressure.set_used_fraction(0.97)
    wait_until(lambda: state_of(runner, "scavenger") == "killed", 5, "the ticker to evict the lowest priority")
    assert "memory pressure" in runner.status("scavenger")["last_error"]
    assert state_of(runner, "prod") == "running"
    pressure.set_used_fraction(0.5)  # the eviction relieved the machine
    wait_until(lambda: runner.last_reading.used_fraction < 0.9, 5, "the ticker to read the relief")
    assert [state_of(runner, t) for t in ("prod", "batch")] == ["running", "running"]


def test_while_pressure_lasts_evictions_climb_one_priority_at_a_time(make_runner, pressure):
    runner = make_runner(kill_grace_s=0.2, usage_interval_s=3600)  # the test checks pressure by hand
    runner.submit(launch("prod", "sleep", "60", priority=10),
                  launch("batch", "sleep", "60", priority=4),
                  launch("scavenger", "sleep", "60", priority=0))
    wait_until(lambda: len(runner.procs) == 3)
    wait_until(lambda: runner.last_reading is not None, 5, "the ticker's one pressure check")
    pressure.set_used_fraction(0.97)
    assert runner.check_pressure() == ["scavenger"]
    assert runner.check_pressure() == [], "no second victim before the first one is gone"
    wait_until(lambda: state_of(runner, "scavenger") == "killed", 5)
    assert runner.check_pressure() == ["batch"]
    wait_until(lambda: state_of(runner, "batch") == "killed", 5)
    pressure.set_used_fraction(0.5)
    assert runner.check_pressure() == []
    assert state_of(runner, "prod") == "running"


def test_processes_a_task_left_behind_are_killed_when_its_main_process_exits(make_runner):
    runner = make_runner()
    runner.submit(launch("parent", "sh", "-c", "sleep 60 & echo $!; sleep 0.2; exit 0"))
    wait_until(lambda: state_of(runner, "parent") == "finished", 5)
    child = int(runner.logs("parent", "stdout", 5).split()[0])  # not its working directory: removed after
    wait_until(lambda: not pid_alive(child), 5, "the orphaned child to be killed")


def test_usage_is_measured_for_a_running_task(make_runner):
    runner = make_runner()
    runner.submit(launch("burn", sys.executable, "-c", "x = b'y' * (30 * 2**20)\nwhile True: pass"))
    wait_until(lambda: runner.status("burn")["usage"]["cpu_milli"] > 200, 5, "cpu usage to show")
    wait_until(lambda: runner.status("burn")["usage"]["memory_bytes"] > 20 * 2**20, 5, "memory usage to show")


def test_task_environment_has_its_ports_and_env(make_runner):
    runner = make_runner()
    runner.submit(launch("env", "sh", "-c", "echo $CORRAL_TASK_ID $CORRAL_PORT0 $GREETING", ports=[8080],
                         env={"GREETING": "hello"}))
    wait_until(lambda: state_of(runner, "env") == "finished", 5)
    wait_until(lambda: "env 8080 hello" in runner.logs("env", "stdout", 5), 2, "the output in the log")


def test_a_speculative_copy_runs_under_its_own_id_and_knows_its_copy_number(make_runner):
    runner = make_runner()
    script = "echo $CORRAL_TASK_ID $CORRAL_TASK_NAME $CORRAL_TASK_COPY"
    runner.submit(launch("3.sort.alice.local", "sh", "-c", script))
    runner.submit(launch("3.sort.alice.local.copy1", "sh", "-c", script, name="3.sort.alice.local", copy=1))
    for task_id, line in (("3.sort.alice.local", "3.sort.alice.local 3.sort.alice.local 0"),
                          ("3.sort.alice.local.copy1", "3.sort.alice.local.copy1 3.sort.alice.local 1")):
        wait_until(lambda: state_of(runner, task_id) == "finished", 5)
        wait_until(lambda: line in runner.logs(task_id, "stdout", 5), 2, f"{task_id}'s output")


def test_a_service_answering_its_http_health_check_is_healthy(make_runner):
    from .conftest import free_port

    runner = make_runner()
    port = free_port()
    check = {"http": f"http://127.0.0.1:{port}/", "interval_s": 0.1, "timeout_s": 1, "failures": 50}
    runner.submit(launch("web", sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                         health_check=check))
    wait_until(lambda: runner.status("web")["healthy"] is True, 10, "the HTTP health check to pass")


def test_an_http_health_check_nobody_answers_restarts_the_task(make_runner):
    from .conftest import free_port

    runner = make_runner(kill_grace_s=0.2)
    check = {"http": f"http://127.0.0.1:{free_port()}/healthz", "interval_s": 0.05, "timeout_s": 1, "failures": 2}
    runner.submit(launch("deaf", "sleep", "60", health_check=check, restart={"max_failures": 1}))
    wait_until(lambda: state_of(runner, "deaf") == "failed", 10, "the health restart")
    assert "ConnectError" in runner.status("deaf")["last_error"]


def test_an_agent_side_failure_to_prepare_a_task_fails_the_task_not_the_agent(make_runner):
    runner = make_runner()
    (runner.tasks_dir / "blocked").write_text("a file where the task's log directory should be")
    runner.submit(launch("blocked", "sleep", "60", restart={"max_failures": 1}))
    status = wait_until(lambda: state_of(runner, "blocked") == "failed" and runner.status("blocked"), 5)
    assert "the agent could not start it" in status["last_error"]
    runner.submit(launch("fine", "sleep", "60"))
    wait_until(lambda: state_of(runner, "fine") == "running", 5, "the agent to go on running tasks")


def test_named_ports_reach_the_task_as_port_variables(make_runner):
    runner = make_runner()
    runner.submit(launch("named", "sh", "-c", "echo http=$PORT_HTTP admin=$PORT_ADMIN", ports=[31012, 31013],
                         named_ports={"http": 31012, "admin": 31013}))
    wait_until(lambda: state_of(runner, "named") == "finished", 5)
    wait_until(lambda: "http=31012 admin=31013" in runner.logs("named", "stdout", 5), 2, "the output in the log")
