"""Dynamic ports through the master: picked at commit, sent in the launch, kept in checkpoints, freed at end."""

from corral.master.commands import AgentReport, Kill, StartTask
from corral.master.state import CellState
from corral.master.commands import Submit
from tests.master.helpers import Harness, spec


def submit(h, name, ports, tasks=1):
    body = spec(name, tasks=tasks)
    body["resources"]["ports"] = ports
    return h.run(Submit(body))


def starts(out):
    return [e for e in out.effects if isinstance(e, StartTask)]


def test_each_task_gets_its_own_ports_in_its_launch_and_they_survive_a_checkpoint():
    h = Harness()
    h.machine("m1")
    submit(h, "web", {"http": 0, "admin": 0}, tasks=2)
    out = h.schedule()
    launches = {s.task: s.launch for s in starts(out)}
    assert len(launches) == 2
    held = [tuple(launch["ports"]) for launch in launches.values()]
    assert sorted(held) == [(31000, 31001), (31002, 31003)]
    for launch in launches.values():
        assert launch["named_ports"] == {"http": launch["ports"][0], "admin": launch["ports"][1]}
    t0 = h.task("web", 0)
    assert t0.ports == tuple(launches[t0.name]["ports"])
    again = CellState.from_dict(h.state.to_dict())
    assert again.tasks[t0.name].ports == t0.ports
    assert again.view.ports[0] == set(range(31000, 31004))


def test_ports_are_given_back_when_a_task_ends_and_a_new_task_can_take_them():
    h = Harness()
    h.machine("m1")
    submit(h, "web", {"http": 0})
    h.schedule()
    t0 = h.task("web")
    assert t0.ports == (31000,)
    h.run(AgentReport("m1", [{"task_id": t0.name, "generation": t0.generation, "state": "finished",
                              "exit_code": 0}]))
    assert t0.ports == () and h.state.view.ports[0] == set()
    submit(h, "api", {"http": 0})
    h.schedule()
    assert h.task("api").ports == (31000,)


def test_a_killed_job_frees_its_ports():
    h = Harness()
    h.machine("m1")
    submit(h, "web", {"http": 0}, tasks=3)
    h.schedule()
    assert h.state.view.ports[0] == {31000, 31001, 31002}
    h.run(Kill("web.alice"))
    assert h.state.view.ports[0] == set()
