"""A local cell from ``corral up``, used through the CLI from another process, as a person would."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import Cell, alive, task_line, wait_until


def test_a_job_submitted_through_the_cli_runs_as_real_processes_on_the_agents(cell):
    # A port per task, so each machine can hold only one: the two tasks land on both agents.
    spec = cell.spec("sleeper", tasks=2, command="sh", args=["-c", "echo ready $CORRAL_TASK_NAME; exec sleep 600"],
                     resources={"cpu": "100m", "memory": "32Mi", "ports": [18181]})
    done = cell.corral("submit", spec)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: all(t["state"] == "running" for t in cell.tasks("sleeper")), 15, "2 running tasks")
    by_machine: dict[str, list[str]] = {}
    for t in cell.tasks("sleeper"):
        by_machine.setdefault(t["machine"], []).append(t["name"])
    for machine, names in by_machine.items():
        reported = wait_until(lambda: {t["task_id"]: t for t in cell.agent_state(machine)["tasks"]
                                       if t["task_id"] in names and t["state"] == "running" and t["pid"]},
                              10, f"the agent of {machine} to run {names}")
        assert set(reported) == set(names)
        for status in reported.values():
            proc = psutil.Process(status["pid"])
            assert alive(proc.pid) and proc.cmdline()[:1] == ["sleep"], proc.cmdline()
    assert sorted(by_machine) == sorted(cell.info["agents"])
    jobs = cell.corral("jobs")
    assert jobs.returncode == 0 and "0/2/0" in jobs.stdout, jobs.stdout
    status = cell.corral("status", "sleeper")
    assert status.returncode == 0 and "running" in task_line(status.stdout, 1), status.stdout
    # The task's name resolves to its machine, the agent's address and its port once it runs.
    where = cell.api("/tasks/1.sleeper." + cell.api("/jobs/sleeper")["user"] + ".local")
    assert where["state"] == "running" and where["address"] == cell.info["agents"][where["machine"]]["address"]
    assert where["ports"] == [18181]
    killed = cell.corral("kill", "sleeper")
    assert killed.returncode == 0, killed.stderr
    pids = [p for p in cell.seen_pids]
    wait_until(lambda: not any(alive(p) for p in pids), 15, "the killed job's processes to end")


def test_corral_logs_returns_the_output_of_a_task_even_after_it_finished(cell):
    spec = cell.spec("talker", command="sh", args=["-c", "echo out-line-1; echo out-line-2; echo err-line >&2"])
    assert cell.corral("submit", spec).returncode == 0
    wait_until(lambda: cell.tasks("talker")[0]["state"] == "succeeded", 15, "the task to finish")
    out = cell.corral("logs", "talker/0")
    assert out.returncode == 0 and out.stdout.splitlines() == ["out-line-1", "out-line-2"], (out.stdout, out.stderr)
    err = cell.corral("logs", "talker/0", "--stream", "stderr", "--tail", "1")
    assert err.returncode == 0 and err.stdout.strip() == "err-line", (err.stdout, err.stderr)
    missing = cell.corral("logs", "nosuchjob/0")
    assert missing.returncode == 2 and "no task" in missing.stderr


def test_a_task_whose_binary_does_not_exist_fails_on_every_machine_with_the_os_error_in_why(cell):
    spec = cell.spec("broken", command="nosuchbinary-corral-e2e",
                     restart={"max_failures": 1, "backoff_s": 0.1, "backoff_max_s": 0.1})
    assert cell.corral("submit", spec).returncode == 0
    wait_until(lambda: cell.tasks("broken")[0]["state"] == "failed", 20, "the task to fail for good")
    why = cell.corral("why", "broken/0")
    assert why.returncode == 0, why.stderr
    assert "No such file or directory" in why.stdout and "nosuchbinary-corral-e2e" in why.stdout, why.stdout
    assert "failed on 2 machines" in why.stdout, why.stdout  # tried elsewhere before giving up
    events = cell.api("/jobs/broken/events")["events"]
    assert [e["via"] for e in events if e["kind"] == "task" and e["via"] in ("failover", "fail")] == ["failover", "fail"]
    jobs = cell.corral("jobs")
    words = [w for line in jobs.stdout.splitlines() if line.startswith("broken") for w in line.split()]
    assert "broken" in jobs.stdout and {"dead", "failed"} & set(words), jobs.stdout  # "failed" once end states land


def test_dynamic_ports_are_picked_per_task_reach_it_as_port_http_and_never_clash_on_a_machine(cell):
    spec = cell.spec("porty", tasks=3, command="sh", args=["-c", "echo port=$PORT_HTTP; exec sleep 600"],
                     resources={"cpu": "100m", "memory": "32Mi", "ports": {"http": 0}})
    assert cell.corral("submit", spec).returncode == 0
    wait_until(lambda: all(t["state"] == "running" for t in cell.tasks("porty")), 15, "3 running tasks")
    tasks = cell.tasks("porty")
    held: dict[str, list[int]] = {}
    for t in tasks:
        (port,) = t["ports"]
        assert 31000 <= port < 32768
        held.setdefault(t["machine"], []).append(port)
        index = t["name"].split(".")[0]
        wait_until(lambda: f"port={port}" in cell.corral("logs", f"porty/{index}").stdout, 10,
                   f"task {index} to print its PORT_HTTP")
    for machine, ports in held.items():
        assert len(set(ports)) == len(ports), f"two tasks share a port on {machine}: {ports}"
    assert cell.corral("kill", "porty").returncode == 0
    wait_until(lambda: all(t["state"] == "killed" for t in cell.tasks("porty")), 15, "the job to be killed")
def test_no_token_is_on_a_command_line_and_the_cells_secrets_are_private(cell):
    import yaml

    tokens = yaml.safe_load((cell.dir / "tokens.yaml").read_text())
    argv = subprocess.run(["ps", "-eo", "args", "--no-headers"], capture_output=True, text=True, check=True).stdout
    assert len(cell.info["agents"]) == 2 and "corral.cli.main agent" in argv  # the agents are there to see
    assert "--token " not in argv
    assert [t for t in tokens if t in argv] == []
    for entry in (e for e in tokens.values() if e["role"] == "agent"):
        assert entry["machine"] == entry["user"][len("agent-"):]  # each agent's token is bound to its machine
    for name in ("tokens.yaml", "state.db"):
        assert stat.S_IMODE((cell.dir / name).stat().st_mode) == 0o600, name


@pytest.mark.skipif(os.geteuid() != 0, reason="an agent that is not root runs its tasks as its own user")
def test_under_corral_up_as_root_a_task_runs_unprivileged_and_cannot_read_the_cells_secrets():
    import shutil
    import tempfile

    # a directory every user may pass through (pytest's own are 0700): only the files' modes guard them
    base = Path(tempfile.mkdtemp(prefix="corral-e2e-secrets-"))
    os.chmod(base, 0o711)
    c = Cell(base)
    try:
        c.start()
        os.chmod(c.dir, 0o711)
        (c.dir / "public.txt").write_text("anyone\n")
        os.chmod(c.dir / "public.txt", 0o644)
        probes = "; ".join(f"cat {c.dir / name} >/dev/null 2>&1; echo {key}=$?" for key, name in (
            ("public", "public.txt"), ("tokens", "tokens.yaml"), ("store", "state.db")))
        spec = c.spec("snoop", command="sh", args=["-c", f"echo uid=$(id -u); {probes}"])
        assert c.corral("submit", spec).returncode == 0
        wait_until(lambda: c.tasks("snoop")[0]["state"] in ("succeeded", "failed", "dead"), 30, "the probe")
        out = dict(line.split("=") for line in c.corral("logs", "snoop/0").stdout.split())
        assert out["uid"] != "0" and out == {"uid": out["uid"], "public": "0", "tokens": "1", "store": "1"}, out
    finally:
        c.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert not c.leftovers(), c.leftovers()
