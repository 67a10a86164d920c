"""Hollow agents speak the agent protocol exactly as the real agent does.

The protocol cases of ``test_api.py`` run here again, unchanged, against a hollow agent (the
``make_agent`` fixture below replaces theirs); the cases that look at real processes or their
output have hollow counterparts here. Then what only hollow agents do: play a task's run time,
share one server among many ports, vanish when killed.
"""

from __future__ import annotations

import time

import httpx
import pytest

from corral.agent.config import AgentConfig
from corral.agent.hollow import FIRST_PID, HOLLOW, HollowHost, run_time

from .conftest import free_port, wait_until
from .test_api import (  # noqa: F401  (collected here, over hollow agents)
    TOKEN,
    client,
    states,
    task,
    test_a_launched_task_shows_in_the_full_state_and_is_killed_by_delete,
    test_assignments_kill_tasks_the_master_placed_elsewhere,
    test_bad_input_is_a_4xx_naming_the_field,
    test_bad_log_queries_are_a_400_naming_the_field,
    test_invalid_json_is_a_400_and_an_unknown_task_a_404,
    test_the_agent_registers_as_the_protocol_says_and_retries_until_the_master_answers,
    test_the_api_needs_the_agent_token,
)


def hollow_config(tmp_path, name: str = "m1", master: str | None = None, **settings) -> AgentConfig:
    return AgentConfig(
        name=name, master=master or f"http://127.0.0.1:{free_port()}", token=TOKEN, state_dir=tmp_path / name,
        capacity={"cpu": 4000, "memory": 8 * 2**30, "disk": 0, "gpu": 0}, attributes={"rack": "r1"},
        kill_grace_s=0.5, tick_s=0.02, usage_interval_s=0.1, register_backoff_s=0.05, register_backoff_max_s=0.2,
        **settings,
    )


@pytest.fixture
def make_agent(tmp_path):
    """Like test_api's: one agent named m1 per call, here a hollow one on a host of its own."""
    hosts: list[HollowHost] = []

    def make(master: str | None = None, **settings):
        host = HollowHost(tick_s=0.02, usage_interval_s=0.1, validate=True)
        agent = host.add(hollow_config(tmp_path / f"host{len(hosts)}", master=master, **settings))
        hosts.append(host)
        host.start()
        return agent

    yield make
    for host in hosts:
        host.stop()


@pytest.fixture
def hollow_host(tmp_path):
    hosts: list[HollowHost] = []

    def make(names: list[str], master: str | None = None) -> HollowHost:
        host = HollowHost(tick_s=0.02, usage_interval_s=0.1, validate=True)
        for name in names:
            host.add(hollow_config(tmp_path, name=name, master=master))
        hosts.append(host)
        return host.start()

    yield make
    for host in hosts:
        host.stop()


@pytest.mark.parametrize(
    "case, command, args, expected",
    [
        ("sleep runs for its argument and exits 0", "sleep", ["2.5"], (2.5, 0)),
        ("sleep by its full path is still sleep", "/bin/sleep", ["3"], (3.0, 0)),
        ("sleep without a number fails at once", "sleep", [], (0.0, 1)),
        ("true ends at once with 0", "true", [], (0.0, 0)),
        ("false ends at once with 1", "false", [], (0.0, 1)),
        ("a shell script runs for the sum of its sleeps", "sh", ["-c", "echo a; sleep 1; sleep 0.5"], (1.5, 0)),
        ("a shell script that execs sleep runs for it", "sh", ["-c", "echo ready; exec sleep 600"], (600.0, 0)),
        ("a shell script ending in exit 3 exits 3", "sh", ["-c", "sleep 1; exit 3"], (1.0, 3)),
        ("sleep infinity never ends", "sleep", ["infinity"], (float("inf"), 0)),
        ("any other command ends at once with 0", "python3", ["-c", "print(1)"], (0.0, 0)),
    ],
)
def test_a_hollow_task_runs_for_the_time_its_command_says(case, command, args, expected):
    assert run_time(command, args) == expected


def test_a_hollow_task_runs_then_finishes_with_exit_0_and_no_process(make_agent):
    agent = make_agent()
    with client(agent) as c:
        reply = c.put("/v1/tasks/t1", json=task("t1", "0.3"))
        assert reply.status_code == 200, reply.text
        status = c.get("/v1/tasks/t1").json()
        assert status["state"] == "running" and status["pid"] >= FIRST_PID
        assert agent.processes.alive(status["pid"])
        assert c.get("/v1/state").json()["isolation"] == HOLLOW
        wait_until(lambda: states(c).get("t1") == "finished", 5, "t1 to finish")
        done = c.get("/v1/tasks/t1").json()
        assert done["exit_code"] == 0 and not agent.processes.alive(status["pid"])
        assert c.get("/v1/tasks/t1/logs").text == "", "a hollow task writes no output"


def test_a_failing_hollow_task_is_restarted_per_its_policy(make_agent):
    agent = make_agent()
    with client(agent) as c:
        c.put("/v1/tasks/t1", json=task("t1", command="false", restart={"backoff_s": 0.05, "max_failures": 3}))
        wait_until(lambda: states(c).get("t1") == "failed", 5, "t1 to fail for good")
        status = c.get("/v1/tasks/t1").json()
        assert status["failures"] == 3 and status["restarts"] == 2 and status["exit_code"] == 1


def test_a_killed_hollow_task_dies_of_sigterm(make_agent):
    agent = make_agent()
    with client(agent) as c:
        c.put("/v1/tasks/t1", json=task("t1"))
        pid = c.get("/v1/tasks/t1").json()["pid"]
        c.delete("/v1/tasks/t1")
        wait_until(lambda: states(c).get("t1") == "killed", 5, "t1 to be killed")
        assert not agent.processes.alive(pid)
        assert c.get("/v1/tasks/t1").json()["exit_code"] == -15, "a killed sleep ends by SIGTERM"


def test_the_hollow_agent_keeps_its_tasks_running_when_no_master_answers(make_agent):
    agent = make_agent()
    with client(agent) as c:
        c.put("/v1/tasks/t1", json=task("t1"))
        pid = wait_until(lambda: agent.runner.status("t1")["pid"], 5)
        time.sleep(1.0)
        assert agent.registrar.attempts >= 2 and agent.registrar.registered_at is None
        assert states(c) == {"t1": "running"} and agent.runner.status("t1")["pid"] == pid
        assert agent.processes.alive(pid)


def test_many_hollow_agents_each_answer_on_their_own_port_with_their_own_state(hollow_host):
    host = hollow_host([f"h{i}" for i in range(5)])
    addresses = {a.address for a in host.agents.values()}
    assert len(addresses) == 5, "two hollow agents share an address"
    for name, agent in host.agents.items():
        with client(agent) as c:
            c.put(f"/v1/tasks/{name}-t", json=task(f"{name}-t"))
    for name, agent in host.agents.items():
        with client(agent) as c:
            state = c.get("/v1/state").json()
            assert state["machine"] == name and [t["task_id"] for t in state["tasks"]] == [f"{name}-t"]


def test_a_killed_hollow_agent_refuses_connections_and_resets_open_ones_while_the_others_serve(hollow_host):
    host = hollow_host(["h0", "h1"])
    dead, alive = host.agents["h0"], host.agents["h1"]
    with client(dead) as kept:
        assert kept.get("/v1/state").status_code == 200  # an open keep-alive connection
        host.kill("h0")
        with pytest.raises(httpx.TransportError):
            kept.get("/v1/state")
    with pytest.raises(httpx.TransportError):
        httpx.get(dead.address + "/v1/state", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
    with client(alive) as c:
        assert c.get("/v1/state").json()["machine"] == "h1"
