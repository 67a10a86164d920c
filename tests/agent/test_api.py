"""The agent's HTTP API through real HTTP on 127.0.0.1, with a fake master that records registrations."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from corral.agent.config import AgentConfig
from corral.agent.daemon import Agent

from .conftest import free_port, pid_alive, wait_until

TOKEN = "agent-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeMaster:
    """A master that only answers registrations (and can refuse them)."""

    def __init__(self):
        self.registrations: list[tuple[str, dict]] = []
        app = FastAPI()

        @app.post("/api/v1/agents/register")
        async def register(request: Request):
            self.registrations.append((request.headers.get("authorization", ""), await request.json()))
            return {"machine": "m1", "poll_interval_s": 0.5}

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.config.port}"

    def __enter__(self):
        self.thread.start()
        wait_until(lambda: self.server.started, 5, "the fake master to start")
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def make_agent(tmp_path, isolation, pressure):
    agents: list[Agent] = []

    def make(master: str | None = None, **settings) -> Agent:
        config = AgentConfig(
            name="m1", master=master or f"http://127.0.0.1:{free_port()}", token=TOKEN,
            state_dir=tmp_path / f"agent{len(agents)}", capacity={"cpu": 4000, "memory": 8 * 2**30, "disk": 0, "gpu": 0},
            attributes={"rack": "r1"}, kill_grace_s=0.5, tick_s=0.02, usage_interval_s=0.1,
            register_backoff_s=0.05, register_backoff_max_s=0.2, **settings,
        )
        agent = Agent(config, pressure_source=pressure, isolation=isolation, validate=True).start()
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


def client(agent: Agent) -> httpx.Client:
    return httpx.Client(base_url=agent.address, headers=AUTH, timeout=5)


def task(task_id: str, *args: str, command: str = "sleep", **fields) -> dict:
    return {"task_id": task_id, "generation": 1, "command": command, "args": list(args or ("60",)),
            "resources": {"cpu": 100, "memory": 64 * 2**20}, **fields}


def states(c: httpx.Client) -> dict[str, str]:
    return {t["task_id"]: t["state"] for t in c.get("/v1/state").json()["tasks"]}


@pytest.mark.parametrize(
    "case, method, path, headers",
    [
        ("the state without a token is refused", "GET", "/v1/state", {}),
        ("the state with a wrong token is refused", "GET", "/v1/state", {"Authorization": "Bearer nope"}),
        ("a launch with a token of the wrong scheme is refused", "PUT", "/v1/tasks/t1", {"Authorization": f"Basic {TOKEN}"}),
        ("assignments without a token are refused", "PUT", "/v1/assignments", {}),
        ("logs without a token are refused", "GET", "/v1/tasks/t1/logs", {}),
    ],
)
def test_the_api_needs_the_agent_token(case, method, path, headers, make_agent):
    agent = make_agent()
    response = httpx.request(method, agent.address + path, headers=headers, json=task("t1"), timeout=5)
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "authorization"
    assert agent.runner.statuses() == [], "an unauthorized request changed the agent's state"


def test_a_launched_task_shows_in_the_full_state_and_is_killed_by_delete(make_agent):
    agent = make_agent()
    with client(agent) as c:
        reply = c.put("/v1/tasks/t1", json=task("t1"))
        assert reply.status_code == 200, reply.text
        wait_until(lambda: states(c).get("t1") == "running", 5, "t1 to run")
        state = c.get("/v1/state").json()
        assert state["machine"] == "m1" and state["isolation"] == agent.isolation.name
        assert isinstance(state["incarnation"], int)
        (t1,) = state["tasks"]
        for key in ("task_id", "generation", "state", "pid", "exit_code", "failures", "last_error",
                    "healthy", "usage", "started_at"):
            assert key in t1, f"TaskStatus lacks {key}"
        assert set(t1["usage"]) == {"cpu_milli", "memory_bytes"}
        assert isinstance(t1["startup_s"], float) and 0 <= t1["startup_s"] < 5, "a running task's start-up cost"
        pid = t1["pid"]
        assert c.put("/v1/tasks/t1", json=task("t1")).json()["pid"] == pid, "the same generation again restarted it"
        assert c.delete("/v1/tasks/t1").status_code == 200
        wait_until(lambda: states(c).get("t1") == "killed", 5, "t1 to be killed")
        assert not pid_alive(pid)
        assert c.delete("/v1/tasks/t1").json()["state"] == "killed", "a repeated DELETE is harmless"
        assert c.delete("/v1/tasks/never-here").json()["state"] == "absent"


@pytest.mark.parametrize(
    "case, path, body, status, field",
    [
        ("a memory limit in parsecs names resources.memory", "/v1/tasks/t1",
         task("t1", resources={"memory": "12 parsecs"}), 400, "resources.memory"),
        ("a missing command names command", "/v1/tasks/t1", {"task_id": "t1"}, 400, "command"),
        ("a body whose task id differs from the URL names task_id", "/v1/tasks/t1", task("t2"), 400, "task_id"),
        ("a task id starting with a dash names task_id", "/v1/tasks/-rf", task("-rf"), 400, "task_id"),
        ("a priority of 12 names priority", "/v1/tasks/t1", task("t1", priority=12), 400, "priority"),
        ("an unknown appclass names appclass", "/v1/tasks/t1", task("t1", appclass="urgent"), 400, "appclass"),
        ("a health check with neither http nor command names health_check", "/v1/tasks/t1",
         task("t1", health_check={"interval_s": 1}), 400, "health_check"),
        ("a negative backoff names restart.backoff_s", "/v1/tasks/t1",
         task("t1", restart={"backoff_s": -1}), 400, "restart.backoff_s"),
        ("a launch body that is a list names body", "/v1/tasks/t1", [1, 2], 400, "body"),
        ("assignments without task_ids name task_ids", "/v1/assignments", {"ids": []}, 400, "task_ids"),
        ("assignments with a number among the ids name the entry", "/v1/assignments", {"task_ids": ["a", 3]}, 400, "task_ids.1"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(case, path, body, status, field, make_agent):
    agent = make_agent()
    with client(agent) as c:
        reply = c.put(path, json=body)
        assert reply.status_code == status, reply.text
        assert field in [e["field"] for e in reply.json()["errors"]], reply.json()
    assert agent.runner.statuses() == []


@pytest.mark.parametrize(
    "case, path, field",
    [
        ("an unknown log stream names stream", "/v1/tasks/t1/logs?stream=stdin", "stream"),
        ("a tail that is not a number names tail", "/v1/tasks/t1/logs?tail=lots", "tail"),
        ("a tail of zero names tail", "/v1/tasks/t1/logs?tail=0", "tail"),
    ],
)
def test_bad_log_queries_are_a_400_naming_the_field(case, path, field, make_agent):
    agent = make_agent()
    with client(agent) as c:
        c.put("/v1/tasks/t1", json=task("t1", "-c", "echo hi", command="sh"))
        reply = c.get(path)
        assert reply.status_code == 400 and reply.json()["errors"][0]["field"] == field


def test_invalid_json_is_a_400_and_an_unknown_task_a_404(make_agent):
    agent = make_agent()
    with client(agent) as c:
        reply = c.put("/v1/tasks/t1", content=b"{not json", headers={"Content-Type": "application/json"})
        assert reply.status_code == 400 and reply.json()["errors"][0]["field"] == "body"
        assert c.get("/v1/tasks/ghost/logs").status_code == 404
        assert c.get("/v1/tasks/ghost").status_code == 404


def test_the_logs_endpoint_serves_the_tail_of_a_stream(make_agent):
    agent = make_agent()
    with client(agent) as c:
        c.put("/v1/tasks/t1", json=task("t1", "-c", "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2",
                                        command="sh"))
        wait_until(lambda: states(c).get("t1") == "finished", 5)
        assert c.get("/v1/tasks/t1/logs", params={"tail": 2}).text == "line4\nline5\n"
        assert c.get("/v1/tasks/t1/logs", params={"stream": "stderr"}).text == "oops\n"


def test_assignments_kill_tasks_the_master_placed_elsewhere(make_agent):
    agent = make_agent()
    with client(agent) as c:
        for t in ("keep", "stray"):
            c.put(f"/v1/tasks/{t}", json=task(t))
        wait_until(lambda: states(c) == {"keep": "running", "stray": "running"}, 5)
        stray_pid = agent.runner.status("stray")["pid"]
        reply = c.put("/v1/assignments", json={"task_ids": ["keep"]})
        assert reply.status_code == 200 and reply.json()["killing"] == ["stray"]
        wait_until(lambda: states(c) == {"keep": "running", "stray": "killed"}, 5, "the stray to be killed")
        assert not pid_alive(stray_pid)
        c.put("/v1/assignments", json={"task_ids": ["keep"]})
        assert states(c) == {"keep": "running"}, "a dead stray is forgotten at the next assignments"


def test_the_agent_registers_as_the_protocol_says_and_retries_until_the_master_answers(make_agent):
    port = free_port()
    agent = make_agent(master=f"http://127.0.0.1:{port}")
    wait_until(lambda: agent.registrar.attempts >= 2, 5, "registration retries while no master listens")
    assert agent.registrar.registered_at is None
    master = FakeMaster()
    master.server.config.port = port
    with master:
        wait_until(lambda: master.registrations, 5, "the agent to register once the master is up")
    auth, body = master.registrations[0]
    assert auth == f"Bearer {TOKEN}"
    assert body == {"name": "m1", "address": agent.address,
                    "capacity": {"cpu": 4000, "memory": 8 * 2**30, "disk": 0, "gpu": 0},
                    "gpu_model": "", "attributes": {"rack": "r1"}, "isolation": agent.isolation.name}
    assert agent.registrar.poll_interval_s == 0.5


def test_the_agent_keeps_its_tasks_running_when_no_master_answers(make_agent):
    agent = make_agent()  # its master URL points at a port nobody listens on
    with client(agent) as c:
        c.put("/v1/tasks/t1", json=task("t1"))
        pid = wait_until(lambda: agent.runner.status("t1")["pid"], 5)
        time.sleep(1.0)  # several failed registrations and ticks
        assert agent.registrar.attempts >= 2 and agent.registrar.registered_at is None
        assert states(c) == {"t1": "running"} and agent.runner.status("t1")["pid"] == pid
        assert pid_alive(pid)


@pytest.mark.parametrize(
    "case, method, path, headers, body, status, kind",
    [
        ("no token is unauthorized", "GET", "/v1/state", {}, None, 401, "unauthorized"),
        ("a body that does not validate is invalid", "PUT", "/v1/tasks/t1", AUTH, {"task_id": "t1"}, 400, "invalid"),
        ("a bad task id is invalid", "DELETE", "/v1/tasks/-rf", AUTH, None, 400, "invalid"),
        ("an unknown task is not found", "GET", "/v1/tasks/ghost", AUTH, None, 404, "not_found"),
        ("an unknown path is not found", "GET", "/v1/nothing-here", AUTH, None, 404, "not_found"),
        ("a wrong method is invalid", "POST", "/v1/state", AUTH, None, 405, "invalid"),
    ],
)
def test_errors_have_the_masters_body_kind_message_and_field_errors(case, method, path, headers, body, status, kind,
                                                                    make_agent):
    agent = make_agent()
    reply = httpx.request(method, agent.address + path, headers=headers, json=body, timeout=5)
    assert reply.status_code == status, reply.text
    data = reply.json()
    assert set(data) == {"error", "message", "errors"} and data["error"] == kind
    assert data["errors"] and all(set(e) == {"field", "message"} and e["field"] and e["message"] for e in data["errors"])
    assert data["message"] == "; ".join(f"{e['field']}: {e['message']}" for e in data["errors"])


def test_a_bug_is_a_500_of_kind_internal_in_the_same_body(make_agent, monkeypatch):
    agent = make_agent()

    def broken(task_id):
        raise RuntimeError("a bug in the runner")

    monkeypatch.setattr(agent.runner, "status", broken)
    reply = httpx.get(agent.address + "/v1/tasks/t1", headers=AUTH, timeout=5)
    assert reply.status_code == 500 and reply.json()["error"] == "internal"
    assert reply.json()["errors"] == [{"field": "agent", "message": "internal error: RuntimeError: a bug in the runner"}]


def test_a_launch_asking_for_a_port_another_live_task_holds_is_refused_until_that_task_ends(make_agent):
    agent = make_agent()
    with client(agent) as c:
        assert c.put("/v1/tasks/t1", json=task("t1", ports=[31000], named_ports={"http": 31000})).status_code == 200
        wait_until(lambda: states(c).get("t1") == "running", 5, "t1 to run")
        refused = c.put("/v1/tasks/t2", json=task("t2", ports=[31000]))
        assert refused.status_code == 409, refused.text
        assert refused.json()["errors"][0]["field"] == "ports"
        assert "t1" in refused.json()["errors"][0]["message"]
        assert "t2" not in states(c)
        c.delete("/v1/tasks/t1")
        wait_until(lambda: states(c).get("t1") == "killed", 5, "t1 to be killed")
        assert c.put("/v1/tasks/t2", json=task("t2", ports=[31000])).status_code == 200


def test_named_ports_that_are_not_among_the_ports_are_a_400(make_agent):
    agent = make_agent()
    with client(agent) as c:
        reply = c.put("/v1/tasks/t1", json=task("t1", ports=[31000], named_ports={"http": 31001}))
        assert reply.status_code == 400, reply.text
