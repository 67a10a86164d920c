"""A cell whose master and agent are on different "hosts" (distinct loopback addresses): each listens
where it is told and is reached at the URL it advertises; nothing assumes 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import yaml

from corral.store.etcd_cluster import free_port
from tests.e2e.conftest import wait_until
from tests.master.procs import child_env

ADMIN, AGENT = "t-admin", "t-agent"


def _port_held_on_localhost(host: str, held: list[socket.socket]) -> int:
    """A port free on ``host`` whose 127.0.0.1 twin this test holds bound (not listening): on a
    shared machine another process could otherwise serve 127.0.0.1 at that port and fail the
    check that the master and agent serve only their own hosts."""
    for _ in range(50):
        port = free_port(host)
        twin = socket.socket()
        try:
            twin.bind(("127.0.0.1", port))
        except OSError:
            twin.close()
            continue
        held.append(twin)
        return port
    raise RuntimeError(f"no port free on both {host} and 127.0.0.1")


def test_a_master_and_an_agent_on_two_loopback_hosts_run_a_task_at_their_advertised_urls(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({ADMIN: {"user": "ops", "role": "admin"},
                                      AGENT: {"user": "agents", "role": "agent", "machine": "*"}}))
    held: list[socket.socket] = []
    master_port, agent_port = _port_held_on_localhost("127.0.0.2", held), _port_held_on_localhost("127.0.0.3", held)
    master_url, agent_url = f"http://127.0.0.2:{master_port}", f"http://127.0.0.3:{agent_port}"
    env = child_env(CORRAL_CONFIG=str(tmp_path / "config.yaml"))
    procs = []
    try:
        with open(tmp_path / "master.log", "wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "corral.cli.main", "master", "--store", f"sqlite:///{tmp_path}/s.db",
                 "--listen", f"127.0.0.2:{master_port}", "--advertise", master_url, "--tokens", str(tokens),
                 "--no-write-config", "--poll-interval", "0.3"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
        with open(tmp_path / "agent.log", "wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "corral.cli.main", "agent", "--master", master_url, "--name", "far",
                 "--token", AGENT, "--listen", f"127.0.0.3:{agent_port}", "--advertise", agent_url,
                 "--state-dir", str(tmp_path / "agent"), "--capacity", "cpu=2,memory=2Gi", "--kill-grace", "1"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
        auth = {"Authorization": f"Bearer {ADMIN}"}
        machines = wait_until(lambda: httpx.get(master_url + "/api/v1/machines", headers=auth).json()["machines"],
                              30, "the agent to register")
        assert machines[0]["address"] == agent_url
        r = httpx.post(master_url + "/api/v1/jobs", headers=auth,
                       json={"name": "far", "command": "sh", "args": ["-c", "exec sleep 60"],
                             "resources": {"cpu": "100m", "memory": "16Mi"}})
        assert r.status_code == 201, r.text
        tasks = wait_until(lambda: [t for t in httpx.get(master_url + "/api/v1/jobs/far.ops/tasks",
                                                         headers=auth).json()["tasks"] if t["state"] == "running"],
                           30, "the task to run on the far agent")
        assert tasks[0]["machine"] == "far"
        with httpx.Client() as c:  # nothing listens on 127.0.0.1 at those ports
            for port in (master_port, agent_port):
                try:
                    c.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                    raise AssertionError(f"something answers on 127.0.0.1:{port}")
                except httpx.ConnectError:
                    pass
    finally:
        for twin in held:
            twin.close()
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
