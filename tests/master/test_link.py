"""Link shards against fake agents (httpx.MockTransport): what reaches the core, when machines go
down and come back, what the agents are told. A real master core and store; no sockets, no sleeps."""

from __future__ import annotations

import json

import httpx
import pytest

from corral.agent.changes import ReportSequence, delta_of
from corral.master.commands import AgentReport, KillTask, MachineDown, MachineUp, RegisterMachine, StartTask
from corral.master.link import attach_link
from corral.master.server import build_master
from corral.model.job import TaskState

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


class FakeAgent:
    """Answers the agent API for one machine; remembers what it was asked."""

    def __init__(self, name: str, token: str = "t-agent", deltas: bool = True):
        self.name, self.token = name, token
        self.tasks: dict[str, dict] = {}
        self.incarnation = "i1"
        self.deltas = deltas  # answer ?since= with what changed, as the real agent does
        self.changes = ReportSequence()
        self.asked: list[dict[str, str]] = []  # the query of each GET /v1/state
        self.online = True
        self.calls: list[tuple[str, str]] = []
        self.assignments: list[list[str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.online:
            raise httpx.ConnectError("connection refused", request=request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"error": "unauthorized"})
        path, method = request.url.path, request.method
        self.calls.append((method, path))
        if path == "/v1/state":
            params = dict(request.url.params)
            self.asked.append(params)
            statuses = [dict(t) for t in self.tasks.values()]
            self.changes.observe(statuses)
            body = {"machine": self.name, "incarnation": self.incarnation, "tasks": statuses}
            if self.deltas:
                since = params.get("since")
                body = delta_of(body, self.changes, int(since) if since is not None else None,
                                params.get("incarnation"))
            return httpx.Response(200, json=body)
        if path == "/v1/assignments":
            ids = json.loads(request.content)["task_ids"]
            self.assignments.append(ids)
            for tid in [t for t in self.tasks if t not in ids]:
                del self.tasks[tid]
            return httpx.Response(200, json={"killing": [], "tasks": []})
        if path.startswith("/v1/tasks/") and path.endswith("/logs"):
            return httpx.Response(200, text=f"log of {path.split('/')[3]}\n")
        tid = path.split("/")[3]
        if method == "PUT":
            launch = json.loads(request.content)
            if launch["command"] == "refused":
                return httpx.Response(422, json={"error": "workdir: no such directory '/nope'"})
            self.tasks[tid] = {"task_id": tid, "generation": launch["generation"], "state": "running", "pid": 100}
            return httpx.Response(200, json=self.tasks[tid])
        if method == "DELETE":
            self.tasks.pop(tid, None)
            return httpx.Response(200, json={"task_id": tid, "state": "absent"})
        return httpx.Response(404)


class Rig:
    def __init__(self, agents=("m1", "m2"), tokens=("t-agent",), deltas: bool = True):
        self.master = build_master("memory://", validate=True)
        self.link = attach_link(self.master, list(tokens), misses_to_down=3, shards=2)
        self.agents = {n: FakeAgent(n, deltas=deltas) for n in agents}
        self.client = httpx.Client(transport=httpx.MockTransport(
            lambda req: self.agents[req.url.host].handle(req)))
        self.commands: list[object] = []
        execute = self.master.execute

        def recording(cmd, *a, **kw):
            self.commands.append(cmd)
            return execute(cmd, *a, **kw)

        self.master.execute = recording
        for name in agents:
            execute(RegisterMachine(name, {"cpu": "4", "memory": "8Gi"}, address=f"http://{name}"))

    @property
    def state(self):
        return self.master.core.state

    def poll(self, *names: str) -> None:
        for name in names or tuple(self.agents):
            m = self.state.machines[name]
            self.link.poll(self.client, name, m.address, m.state)

    def deliver(self) -> None:
        """Carry the effects the link was sent, as its shard threads would."""
        for q in self.link._queues:
            while not q.empty():
                self.link._deliver(self.client, q.get_nowait())

    def submit(self, name: str, tasks: int, command: str = "sleep") -> None:
        from corral.master.commands import Submit

        self.master.execute(Submit({"name": name, "user": "alice", "tasks": tasks, "command": command,
                                    "args": ["600"], "resources": {"cpu": "1", "memory": "1Gi"}}))
        self.master.schedule_once()
        self.deliver()

    def close(self) -> None:
        self.client.close()
        self.master.stop(checkpoint=False)

    def reports(self) -> list[object]:
        out = [c for c in self.commands if isinstance(c, (AgentReport, MachineUp, MachineDown))]
        self.commands.clear()
        return out


@pytest.fixture(params=[True, False], ids=["deltas", "full-state-agent"])
def rig(request):
    r = Rig(deltas=request.param)
    try:
        yield r
    finally:
        r.close()


def test_start_effects_become_puts_with_the_launch_and_kill_effects_deletes(rig):
    rig.submit("web", 3)
    running = {t.name: t.machine for t in rig.state.tasks.values() if t.state is R}
    assert len(running) == 3
    for name, machine in running.items():
        assert rig.agents[machine].tasks[name]["generation"] == rig.state.tasks[name].generation
    from corral.master.commands import Kill

    rig.master.execute(Kill("web.alice"))
    rig.deliver()
    assert not any(a.tasks for a in rig.agents.values())
    assert {c for a in rig.agents.values() for c in a.calls} >= {("DELETE", f"/v1/tasks/{n}") for n in running}


def test_only_what_changed_reaches_the_core_after_the_first_full_report(rig):
    rig.submit("web", 2)
    rig.poll()
    first = rig.reports()
    assert {type(c).__name__ for c in first} == {"AgentReport"}
    assert sum(len(c.tasks) for c in first) == 2  # full state the first time
    rig.poll()
    assert rig.reports() == []  # nothing changed: nothing for the core
    name, task = next((n, t) for n, t in rig.state.tasks.items() if t.state is R)
    machine = task.machine
    rig.agents[machine].tasks[name].update(state="finished", exit_code=0)
    rig.poll()
    [report] = rig.reports()
    assert [s["task_id"] for s in report.tasks] == [name]
    assert task.state is D
    # The agent is then told the master wants it no longer there... but keeps the ended copy's log.
    assert name in rig.agents[machine].assignments[-1] and name not in rig.state.view.tasks[rig.state.view.index[machine]]
    assert rig.link.logs(machine, name, client=rig.client) == (200, f"log of {name}\n")


def test_a_machine_that_misses_polls_is_down_and_comes_back_up_with_its_assignments(rig):
    rig.submit("web", 4)
    rig.poll()
    rig.reports()
    victim = next(t.machine for t in rig.state.tasks.values() if t.state is R)
    rig.agents[victim].online = False
    rig.poll(victim)
    rig.poll(victim)
    assert rig.reports() == [] and rig.state.machines[victim].state == "up"
    rig.poll(victim)
    [down] = rig.reports()
    assert isinstance(down, MachineDown) and rig.state.machines[victim].state == "lost"
    rig.master.schedule_once()
    rig.deliver()
    assert all(t.state is R and t.machine != victim for t in rig.state.tasks.values())
    rig.agents[victim].online = True
    sent = len(rig.agents[victim].assignments)
    rig.poll(victim)
    [up] = rig.reports()
    assert isinstance(up, MachineUp) and rig.state.machines[victim].state == "up"
    assert len(rig.agents[victim].assignments) == sent + 1 and rig.agents[victim].assignments[-1] == []
    assert rig.agents[victim].tasks == {}  # the copies placed elsewhere were killed there


def test_a_task_the_agent_does_not_report_for_two_polls_is_sent_again(rig):
    rig.submit("web", 1)
    [task] = [t for t in rig.state.tasks.values() if t.state is R]
    agent = rig.agents[task.machine]
    rig.poll()
    agent.tasks.clear()  # say the agent restarted without it
    rig.poll(task.machine)
    assert task.name not in agent.tasks
    rig.poll(task.machine)
    assert agent.tasks[task.name]["generation"] == task.generation


def test_an_agent_that_refuses_a_token_is_tried_with_the_other_agent_tokens():
    r = Rig(agents=("m1",), tokens=("t-old", "t-agent"))
    try:
        r.poll()
        assert r.master.core.state.machines["m1"].state == "up" and r.reports()
        assert r.link._token_of["m1"] == "t-agent"
    finally:
        r.close()


def test_effects_are_routed_to_the_shard_of_their_machine(rig):
    effects = [StartTask("0.a.b.c", "m1", "http://m1", {}), KillTask("1.a.b.c", "m2", "http://m2")]
    rig.link.send(effects)
    for effect in effects:
        assert effect in list(rig.link._queues[rig.link.shard_of(effect.machine)].queue)


def test_a_launch_the_agent_refuses_fails_there_and_is_tried_on_the_other_machine_then_fails(rig):
    rig.submit("bad", 1, command="refused")  # placed, refused by the first agent
    task = rig.state.tasks["0.bad.alice.local"]
    assert task.state is P and task.history[-1].via == "failover"
    assert "refused the task: workdir: no such directory" in task.history[-1].note
    rig.master.schedule_once()
    rig.deliver()
    assert task.state is D and task.history[-1].via == "fail" and "2 machines" in task.history[-1].note


def test_the_polls_that_carry_everything_bring_the_agents_usage_to_the_reservations(rig):
    from corral.master.commands import UsageReport

    rig.submit("web", 1)
    name, task = next((n, t) for n, t in rig.state.tasks.items() if t.state is R)
    agent = rig.agents[task.machine]
    agent.tasks[name]["usage"] = {"cpu_milli": 250, "memory_bytes": 2**29}
    for _ in range(rig.link.full_every + 1):
        rig.poll(task.machine)  # nothing changes in the task's state
    usage = [c for c in rig.commands if isinstance(c, UsageReport)]
    # The full answers carry usage: the first poll and every full_every-th one (an agent that
    # answers every poll in full brings it every poll).
    full = sum("since" not in asked for asked in agent.asked) if agent.deltas else len(agent.asked)
    assert len(usage) == full == (2 if agent.deltas else rig.link.full_every + 1)
    assert usage[-1].usage == {name: (task.generation, 250, 2**29)}
    seen = rig.master.core.reservations.machine(rig.state, task.machine, [name])
    assert seen["usage"] == {"cpu": 250, "memory": 2**29} and seen["limit"] == {"cpu": 1000, "memory": 2**30}


# ---- polls that carry only what changed (docs/agent-protocol.md) ---------------------------------


@pytest.fixture
def delta_rig():
    r = Rig(agents=("m1",))
    try:
        yield r
    finally:
        r.close()


def test_between_full_polls_the_link_asks_only_for_what_changed(delta_rig):
    rig = delta_rig
    rig.submit("web", 3)
    agent = rig.agents["m1"]
    rig.poll()
    rig.poll()
    assert "since" not in agent.asked[0]
    assert agent.asked[1] == {"since": str(agent.changes.seq), "incarnation": "i1"}
    name = sorted(agent.tasks)[0]
    agent.tasks[name].update(state="finished", exit_code=0)
    rig.reports()
    rig.poll()
    [report] = rig.reports()
    assert [s["task_id"] for s in report.tasks] == [name] and rig.state.tasks[name].state is D
    for _ in range(rig.link.full_every):
        rig.poll()
    assert ["since" in asked for asked in agent.asked].count(False) == 2  # the first and the 5th


def test_a_missed_poll_or_an_answer_that_is_not_the_delta_asked_for_makes_the_next_ask_for_everything(delta_rig):
    rig = delta_rig
    rig.submit("web", 2)
    agent = rig.agents["m1"]
    rig.poll()
    agent.online = False
    rig.poll()
    agent.online = True
    rig.poll()
    assert "since" not in agent.asked[-1]
    # An answer for another seq than the one asked: nothing of it is taken, everything next.
    real = agent.handle

    def wrong_since(request):
        response = real(request)
        body = response.json()
        if "since" in body:
            body["since"] += 1
        return httpx.Response(200, json=body)

    agent.handle = wrong_since
    rig.poll()
    agent.handle = real
    rig.poll()
    assert "since" in agent.asked[-2] and "since" not in agent.asked[-1]


def test_an_agent_that_restarted_between_two_polls_answers_in_full_and_the_core_hears_all_of_it(delta_rig):
    rig = delta_rig
    rig.submit("web", 2)
    agent = rig.agents["m1"]
    rig.poll()
    rig.reports()
    agent.incarnation, agent.changes = "i2", ReportSequence()  # a new process: its own numbering
    agent.tasks = {t: dict(s, pid=999) for t, s in agent.tasks.items()}
    rig.poll()
    assert "since" in agent.asked[-1]  # asked for a delta of the old incarnation...
    [report] = rig.reports()  # ...got everything, and the core heard every task
    assert report.incarnation == "i2" and len(report.tasks) == 2


def test_a_task_the_agent_forgot_is_removed_from_what_the_link_knows_and_sent_again(delta_rig):
    rig = delta_rig
    rig.submit("web", 1)
    agent = rig.agents["m1"]
    [task] = [t for t in rig.state.tasks.values() if t.state is R]
    rig.poll()
    rig.poll()
    del agent.tasks[task.name]
    rig.poll()
    assert task.name not in rig.link._agents["m1"].known
    rig.poll()
    assert agent.tasks[task.name]["generation"] == task.generation


def test_quiet_polls_send_no_assignments_until_the_master_changes_the_machine(delta_rig):
    rig = delta_rig
    rig.submit("web", 2)
    agent = rig.agents["m1"]
    rig.poll()
    rig.poll()
    sent = len(agent.assignments)
    rig.poll()
    rig.poll()
    assert len(agent.assignments) == sent
    from corral.master.commands import Kill

    rig.master.execute(Kill("web.alice"))  # the master changes the machine; the kills are lost on the way
    rig.poll()
    assert len(agent.assignments) == sent + 1 and agent.assignments[-1] == []
    assert agent.tasks == {}


def test_an_upgrade_goes_to_the_agent_as_its_launch_again_and_a_refusal_fails_nothing(rig):
    from corral.master.commands import UpgradeTask

    rig.submit("web", 1)
    name, task = next((n, t) for n, t in rig.state.tasks.items() if t.state is R)
    agent = rig.agents[task.machine]
    launch = rig.master.core.launch(name)
    del agent.tasks[name]  # so only the upgrade's PUT can bring it back
    rig.link._deliver(rig.client, UpgradeTask(name, task.machine, f"http://{task.machine}", launch))
    assert agent.tasks[name]["generation"] == task.generation  # PUT /v1/tasks/{task}, the same generation
    rig.link._deliver(rig.client, UpgradeTask(name, task.machine, f"http://{task.machine}",
                                              {**launch, "command": "refused"}))
    assert task.state is R and rig.reports() == []  # an upgrade refused is no failed start
