"""What the agents are told of opportunistic tasks: the launch says so, an upgrade relaunches it in place."""

from __future__ import annotations

from corral.master.commands import AgentReport, Kill, StartTask, Tick, UpgradeTask
from corral.master.quota import Quotas
from corral.sched.speculation import SpeculationConfig

from tests.master.helpers import Harness
from tests.master.test_speculation import finish as finish_sort

QUOTA = Quotas.parse({"alice": {"batch": {"cpu": 4, "memory": "64Gi"}}})


def starts(out) -> dict[str, StartTask]:
    return {e.task: e for e in out.effects if isinstance(e, StartTask)}


def upgrades(out) -> dict[str, UpgradeTask]:
    """The upgrades told to agents: not starts (a simulated agent would start a StartTask again)."""
    assert not any(isinstance(e, StartTask) and e.task in {u.task for u in out.effects if isinstance(u, UpgradeTask)}
                   for e in out.effects)
    return {e.task: e for e in out.effects if isinstance(e, UpgradeTask)}


def test_an_opportunistic_tasks_launch_says_so_beside_its_jobs_priority_and_a_regular_ones_does_not():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="8")
    h.submit("a", tasks=4, priority=3)
    h.submit("b", tasks=1, opportunistic=True, priority=3)
    launches = starts(h.schedule())
    opp, regular = launches[h.task("b").name].launch, launches[h.task("a", 0).name].launch
    assert opp["opportunistic"] is True and opp["priority"] == 3  # the job's priority; the flag tells the agent
    assert "opportunistic" not in regular and regular["priority"] == 3


def test_an_upgraded_running_task_is_sent_its_launch_again_same_generation_no_flag():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="8")
    h.submit("a", tasks=4)
    h.submit("b", tasks=1, opportunistic=True)
    h.schedule()
    b = h.task("b")
    machine, generation = b.machine, b.generation
    out = h.run(Kill("a.alice"))
    relaunch = upgrades(out)[b.name]
    assert (relaunch.machine, relaunch.launch["generation"]) == (machine, generation)
    assert "opportunistic" not in relaunch.launch and relaunch.launch["task_id"] == b.name
    assert b.generation == generation and b.machine == machine  # no new placement


def test_an_upgraded_pending_task_is_told_nothing_until_it_is_placed_regular():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=4)
    h.submit("b", tasks=1, opportunistic=True)
    assert upgrades(h.run(Kill("a.alice"))) == {}  # nowhere to tell
    h.machine("m1")
    assert "opportunistic" not in starts(h.schedule())[h.task("b").name].launch


def test_an_upgraded_tasks_speculative_copy_is_told_too():
    h = Harness(quotas=QUOTA, speculation=SpeculationConfig(factor=1.5, quantile=0.9, min_finished=3, per_job=1,
                                                             per_cell=2))
    h.machine("m1", cpu="4", rack="r1")
    h.machine("m2", cpu="4", rack="r1")
    h.machine("m3", cpu="2", rack="r2")
    h.submit("a", tasks=4, cpu="1")
    h.submit("sort", tasks=4, cpu="1", opportunistic=True)
    h.schedule()
    for i in range(3):
        finish_sort(h, i, 5.0 if i == 0 else 0.0)
    h.clock.advance(15.0)
    slow = h.task("sort", 3)
    copy = f"{slow.name}.copy1"
    assert starts(h.run(Tick()))[copy].launch["opportunistic"] is True  # a copy of opportunistic work is too
    out = h.run(Kill("a.alice"))
    told = upgrades(out)
    assert set(told) == {slow.name, copy} and all("opportunistic" not in s.launch for s in told.values())
    assert told[copy].machine == h.state.copies[slow.name].machine and told[copy].launch["copy"] == 1


def test_a_full_report_still_showing_an_upgraded_task_opportunistic_sends_it_again_a_partial_one_does_not():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="8")
    h.submit("a", tasks=4)
    h.submit("b", tasks=1, opportunistic=True)
    h.schedule()
    h.run(Kill("a.alice"))  # upgraded; say its agent never got the word
    b = h.task("b")
    stale = {"task_id": b.name, "generation": b.generation, "state": "running", "opportunistic": True}
    assert upgrades(h.run(AgentReport("m1", [stale], full=False))) == {}  # news, not the truth of the machine
    again = upgrades(h.run(AgentReport("m1", [stale])))[b.name]
    assert again.launch["generation"] == b.generation and "opportunistic" not in again.launch
    fresh = {**stale, "opportunistic": False}
    assert upgrades(h.run(AgentReport("m1", [fresh]))) == {}  # the agent has it: nothing more to say
    old_agent = {k: v for k, v in stale.items() if k != "opportunistic"}
    assert upgrades(h.run(AgentReport("m1", [old_agent]))) == {}  # an agent that never says: nothing to fix
