"""``corral agent`` as a real process: it serves, runs tasks, and on SIGTERM kills them and removes its cgroups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx

from .conftest import cgroup_dirs, free_port, pid_alive, wait_until

# The agent command on its own typer app, so this test does not depend on the
# other command modules listed in corral.cli.main.
SCRIPT = """
import sys, typer
from corral.cli.agent import register
app = typer.Typer()
register(app)
app.command("noop")(lambda: None)
app(sys.argv[1:])
"""


def test_the_agent_command_serves_runs_a_task_and_cleans_up_on_sigterm(tmp_path, cgroup_root):
    port = free_port()
    token = "cli-token"
    argv = [sys.executable, "-c", SCRIPT, "agent", "--master", f"http://127.0.0.1:{free_port()}",
            "--name", "cli", "--port", str(port), "--state-dir", str(tmp_path / "state"),
            "--capacity", "cpu=2,memory=4Gi", "--attributes", "rack=r9", "--cgroup-root", cgroup_root,
            "--kill-grace", "1"]
    agent = subprocess.Popen(argv, env={**os.environ, "CORRAL_AGENT_TOKEN": token}, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    task_pid = None
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}

        def up():
            try:
                return httpx.get(base + "/v1/state", headers=headers, timeout=1).status_code == 200
            except httpx.HTTPError:
                assert agent.poll() is None, agent.stdout.read().decode()
                return False

        wait_until(up, 15, "the agent to serve")
        state = httpx.get(base + "/v1/state", headers=headers, timeout=5).json()
        assert state["machine"] == "cli" and state["capacity"]["cpu"] == 2000
        reply = httpx.put(base + "/v1/tasks/t1", headers=headers, timeout=5,
                          json={"command": "sleep", "args": ["60"], "resources": {"memory": "32Mi"}})
        assert reply.status_code == 200, reply.text
        task_pid = reply.json()["pid"]
        assert pid_alive(task_pid)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0
        wait_until(lambda: not pid_alive(task_pid), 5, "the task to die with its agent")
        assert cgroup_dirs(cgroup_root) == []
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(5)
        if task_pid is not None and pid_alive(task_pid):
            os.kill(task_pid, signal.SIGKILL)
        agent.stdout.close()
