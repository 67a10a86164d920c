"""The rebalancer in the master: moves as events and effects, within budgets, explained."""

from __future__ import annotations

from corral.master.commands import AgentReport, KillTask, StartTask
from corral.master.core import MasterCore
from corral.master.rebalancer import Rebalancer
from corral.model.job import TaskState
from corral.sched.rebalance.planner import RebalanceConfig
from corral.sched.scheduler import Scheduler, SchedulerConfig

from tests.master.helpers import Harness

R = TaskState.RUNNING
ON = RebalanceConfig(enabled=True, interval_s=60, max_moves=4, defragment=False)


def spread_cell(priority: int = 2) -> Harness:
    """4 machines of 4 cpu; three 2-cpu jobs spread over m0..m2 (worst fit); m3 empty."""
    h = Harness(scheduler=Scheduler(SchedulerConfig(policy="worst-fit", relaxed_randomization=False)))
    for i in range(4):
        h.machine(f"m{i}", cpu="4")
    for i in range(3):
        h.submit(f"small{i}", cpu="2", priority=priority)
        h.schedule()
    return h


def occupied(h: Harness) -> set[str]:
    return {t.machine for t in h.state.tasks.values() if t.state is R}


def test_a_move_frees_room_for_a_gang_that_fits_nowhere_and_the_gang_then_starts():
    h = spread_cell()
    assert len(occupied(h)) == 3
    h.submit("train", tasks=2, cpu="4", gang=True)
    h.schedule()
    assert all(t.state is not R for t in h.state.tasks_of("train.alice"))
    out = Rebalancer(h.core, ON).run()
    h.store.append([e.to_dict() for e in out.events])
    assert out.reply["moved"] == 1 and out.reply["freed"] == ["gang train.alice"]
    move = out.reply["moves"][0]
    assert move["reason"].startswith(f"moved from {move['from']} to {move['to']} to free ")
    assert move["reason"].endswith(" for gang train.alice"), move["reason"]
    h.schedule()  # the old copy still drains on the source: its room is not free yet
    assert all(t.state is not R for t in h.state.tasks_of("train.alice"))
    moved = h.state.tasks[move["task"]]
    h.run(AgentReport(move["to"], [{"task_id": moved.name, "state": "running", "generation": moved.generation}]))
    h.schedule()
    assert all(t.state is R for t in h.state.tasks_of("train.alice"))
    # the log holds ordinary events: a rebuilt state is the same state
    assert MasterCore.rebuild(h.store).to_dict() == h.state.to_dict()


def test_the_new_copy_is_started_before_the_old_one_is_stopped():
    h = spread_cell()
    h.submit("train", tasks=2, cpu="4", gang=True)
    h.schedule()
    out = Rebalancer(h.core, ON).run()
    move = out.reply["moves"][0]
    assert move["order"] == "start-first"
    kinds = [(type(e).__name__, e.machine) for e in out.effects if isinstance(e, (StartTask, KillTask))]
    assert kinds == [("StartTask", move["to"])]  # the old copy is not stopped yet
    moved = h.state.tasks[move["task"]]
    assert moved.machine == move["to"] and moved.state is R
    assert moved.history[-2].via == "evict" and "moved from" in h.state.tasks[move["task"]].reason
    # still starting on the target: the old copy keeps running
    starting = {"task_id": moved.name, "state": "starting", "generation": moved.generation}
    assert not h.run(AgentReport(move["to"], [starting], full=True)).effects
    running = {**starting, "state": "running"}
    kills = [e for e in h.run(AgentReport(move["to"], [running], full=True)).effects if isinstance(e, KillTask)]
    assert [(k.task, k.machine) for k in kills] == [(moved.name, move["from"])]
    assert "its new copy runs on" in kills[0].reason
    assert not h.state.draining and moved.name not in h.core.assignments(move["from"])


def test_production_tasks_are_not_movable_by_default_and_never_move():
    h = spread_cell(priority=9)
    before = {n: t.machine for n, t in h.state.tasks.items()}
    h.submit("train", tasks=2, cpu="4", gang=True, priority=2)
    h.schedule()
    out = Rebalancer(h.core, ON).run()
    assert out.reply["moved"] == 0
    assert {n: h.state.tasks[n].machine for n in before} == before


def test_movable_false_and_a_zero_budget_keep_batch_tasks_in_place():
    for fields in ({"movable": False}, {"disruption_budget": {"max_moving": 0}}):
        h = Harness(scheduler=Scheduler(SchedulerConfig(policy="worst-fit", relaxed_randomization=False)))
        for i in range(4):
            h.machine(f"m{i}", cpu="4")
        for i in range(3):
            h.submit(f"small{i}", cpu="2", **fields)
            h.schedule()
        h.submit("train", tasks=2, cpu="4", gang=True)
        h.schedule()
        assert Rebalancer(h.core, ON).run().reply["moved"] == 0, fields


def test_a_pass_runs_only_when_enabled_and_once_per_interval():
    h = spread_cell()
    assert Rebalancer(h.core, RebalanceConfig(enabled=False)).run() is None
    r = Rebalancer(h.core, ON)
    assert r.run() is not None
    assert r.run() is None  # the core's clock has not moved
    h.clock.advance(60)
    assert r.run() is not None


def test_a_stop_first_move_stops_the_old_copy_before_starting_the_new_one_and_a_stale_move_is_skipped():
    from corral.sched.rebalance.moves import Move, RebalancePlan

    h = spread_cell()
    name, task = next((n, t) for n, t in h.state.tasks.items() if t.state is R)
    empty = next(m for m in ("m0", "m1", "m2", "m3") if m not in occupied(h))
    plan = RebalancePlan(moves=[
        Move(name, task.job, task.machine, empty, (), "stop-first", "defragment", f"moved from {task.machine} to {empty}"),
        Move(name, task.job, task.machine, empty, (), "start-first", "defragment", "stale: its source changed"),
    ])
    r = Rebalancer(h.core, ON)
    out = h.core._run("test-move", lambda step: r._apply(step, plan))
    kinds = [type(e).__name__ for e in out.effects]
    assert kinds == ["KillTask", "StartTask"]
    assert out.reply["moved"] == 1 and out.reply["stale"] == [name]
    assert h.state.tasks[name].machine == empty
