"""Start-first moves (corral.master.drains): the old copy runs, its room held, until the new one runs."""

from __future__ import annotations

import pytest

from corral.master.commands import AgentReport, Kill, KillTask, MachineDown, StartTask, Tick
from corral.master.core import MasterCore
from corral.master.invariants import InvariantError
from corral.master.rebalancer import Rebalancer
from corral.model.job import TaskState
from corral.sched.rebalance.moves import Move, RebalancePlan
from corral.sched.rebalance.planner import RebalanceConfig

from tests.master.test_rebalancer import occupied, spread_cell

R, P, D = TaskState.RUNNING, TaskState.PENDING, TaskState.DEAD


def moved_cell(timeout: float = 60.0, order: str = "start-first"):
    """spread_cell with one 2-cpu task moved from its machine to the empty one."""
    h = spread_cell()
    name, task = sorted((n, t) for n, t in h.state.tasks.items() if t.state is R)[0]
    source, old = task.machine, task.generation
    target = next(m for m in ("m0", "m1", "m2", "m3") if m not in occupied(h))
    plan = RebalancePlan(moves=[Move(name, task.job, source, target, (), order, "defragment",
                                     f"moved from {source} to {target}")])
    r = Rebalancer(h.core, RebalanceConfig(enabled=True, drain_timeout_s=timeout))
    out = h.core._run("test-move", lambda step: r._apply(step, plan))
    h.store.append([e.to_dict() for e in out.events])
    return h, name, source, target, old, out


def status(name, generation, state="running", **more):
    return {"task_id": name, "state": state, "generation": generation, **more}


def kills(out):
    return [(e.task, e.machine) for e in out.effects if isinstance(e, KillTask)]


def test_the_old_copy_is_killed_only_once_the_new_one_reports_running_by_notification():
    h, name, source, target, old, out = moved_cell()
    assert [type(e).__name__ for e in out.effects] == ["StartTask"]
    assert h.state.tasks[name].machine == target and h.state.tasks[name].generation == old + 1
    assert name in h.core.assignments(source) and name in h.core.assignments(target)
    assert kills(h.run(AgentReport(target, [status(name, old + 1, "starting")]))) == []
    assert kills(h.run(AgentReport(target, [status(name, old + 1)]))) == [(name, source)]
    assert name not in h.core.assignments(source) and not h.state.draining
    assert source not in occupied(h)  # its room is free again


def test_the_source_room_stays_held_while_the_old_copy_drains():
    h, name, source, target, old, _ = moved_cell()
    # every machine has 2 cpu free (the source: 2 held by the old copy), so a 4-cpu task fits nowhere
    h.submit("big", cpu="4")
    h.schedule()
    assert h.task("big").state is P
    h.run(AgentReport(target, [status(name, old + 1)]))
    h.schedule()
    assert h.task("big").state is R and h.task("big").machine == source


def test_the_poll_does_not_kill_a_draining_old_copy_but_kills_a_stale_generation():
    h, name, source, target, old, _ = moved_cell()
    assert kills(h.run(AgentReport(source, [status(name, old)], full=True))) == []
    assert h.state.draining[name].machine == source
    # an older copy than the draining one is a stray
    assert kills(h.run(AgentReport(source, [status(name, old - 1)], full=True))) == [(name, source)]


def test_a_new_copy_not_running_by_the_deadline_stops_the_old_one_anyway():
    h, name, source, target, old, _ = moved_cell(timeout=30)
    h.clock.advance(29)
    assert kills(h.run(Tick())) == []
    h.clock.advance(1)
    out = h.run(Tick())
    assert kills(out) == [(name, source)]
    assert "did not report running in time" in next(e for e in out.effects if isinstance(e, KillTask)).reason
    assert not h.state.draining and h.state.tasks[name].state is R and h.state.tasks[name].machine == target


def test_a_failed_new_copy_or_a_killed_job_stops_the_old_copy_and_the_task_is_not_lost():
    h, name, source, target, old, _ = moved_cell()
    out = h.run(AgentReport(target, [status(name, old + 1, "failed", exit_code=1, failures=3)]))
    assert (name, source) in kills(out) and not h.state.draining
    assert h.state.tasks[name].state in (P, R)  # failover: pending again (or placed), never gone
    h, name, source, target, old, _ = moved_cell()
    out = h.run(Kill(h.state.tasks[name].job))
    assert {(name, source), (name, target)} <= set(kills(out)) and not h.state.draining


def test_an_old_copy_that_finishes_while_it_drains_finishes_the_task_once_and_stops_the_new_one():
    h, name, source, target, old, _ = moved_cell()
    out = h.run(AgentReport(source, [status(name, old, "finished", exit_code=0)]))
    assert kills(out) == [(name, target)]
    task = h.state.tasks[name]
    assert task.state is D and task.history[-1].via == "finish"
    # the new copy's late word changes nothing: the task ended once
    out = h.run(AgentReport(target, [status(name, old + 1, "finished", exit_code=0)], full=True))
    assert h.state.tasks[name].history == task.history and not out.events


def test_an_old_copy_that_fails_while_it_drains_only_releases_its_room():
    h, name, source, target, old, _ = moved_cell()
    out = h.run(AgentReport(source, [status(name, old, "killed")]))
    assert kills(out) == [] and not out.events and not h.state.draining
    assert h.state.tasks[name].state is R and h.state.tasks[name].machine == target


def test_drains_are_soft_a_rebuilt_master_kills_the_old_copy_at_the_source_poll():
    h, name, source, target, old, _ = moved_cell()
    state = MasterCore.rebuild(h.store)
    assert state.to_dict() == h.state.to_dict()  # the log says the task is on its target
    core = MasterCore(state=state, clock=h.clock, validate=True)
    assert not core.state.draining and name not in core.assignments(source)
    out = core.handle(AgentReport(source, [status(name, old)], full=True))
    assert kills(out) == [(name, source)]
    assert [e for e in out.effects if isinstance(e, KillTask)][0].reason == "not assigned to this machine"


def test_the_source_lost_while_draining_drops_the_drain_and_the_invariants_hold():
    h, name, source, target, old, _ = moved_cell()
    out = h.run(MachineDown(source))
    assert not h.state.draining and kills(out) == []  # the old copy went with its machine
    assert h.state.tasks[name].state is R and h.state.tasks[name].machine == target


def test_the_target_lost_while_draining_stops_the_old_copy():
    h, name, source, target, old, _ = moved_cell()
    out = h.run(MachineDown(target))
    assert (name, source) in kills(out) and not h.state.draining
    assert h.state.tasks[name].state is P  # lost: rescheduled by failover, not gone


def test_validate_mode_checks_a_draining_copy_holds_its_room():
    h, name, source, target, old, _ = moved_cell()
    h.state.validate()  # holds with a draining copy
    h.state.view.remove(h.state.draining[name].id)
    with pytest.raises(InvariantError, match="does not hold its room"):
        h.state.validate()


def test_a_stop_first_move_still_kills_at_once_and_leaves_nothing_draining():
    h, name, source, target, old, out = moved_cell(order="stop-first")
    assert [(type(e).__name__, e.machine) for e in out.effects] == [("KillTask", source), ("StartTask", target)]
    assert not h.state.draining and name not in h.core.assignments(source)
    assert isinstance(out.effects[1], StartTask)


def test_the_links_assignments_keep_a_draining_old_copy_under_its_name_and_never_start_it_again():
    import threading
    from types import SimpleNamespace

    from corral.master.assignments import AgentMemory, plan_assignments

    h, name, source, target, old, _ = moved_cell()
    master, agent = SimpleNamespace(core=h.core, lock=threading.Lock()), AgentMemory()
    for _ in range(3):  # the old copy reported: kept, and its hold's id is no task to start
        keep, relaunch = plan_assignments(master, agent, source, "http://m0", [status(name, old)], None, 60.0)
        assert name in keep and not any(k.endswith(".drain%d" % old) for k in keep) and relaunch == []
    for _ in range(3):  # it went missing: still listed while it drains, never started again
        keep, relaunch = plan_assignments(master, agent, source, "http://m0", [], None, 60.0)
        assert name in keep and relaunch == []
    h.run(AgentReport(target, [status(name, old + 1)]))
    keep, _ = plan_assignments(master, agent, source, "http://m0", [status(name, old)], None, 60.0)
    assert name not in keep  # the drain ended: the agent stops it


def test_a_dry_runs_scratch_core_keeps_the_drains_held_rooms():
    from corral.master.dry_run import scratch_of

    h, name, source, target, old, _ = moved_cell()
    scratch = scratch_of(h.core)
    assert scratch.state.draining[name].machine == source and scratch.state.draining[name] is not h.state.draining[name]
    assert (scratch.state.view.free == h.state.view.free).all()
    scratch.state.validate()


def test_a_higher_priority_task_may_preempt_a_draining_old_copy_and_the_new_copy_runs_on():
    h, name, source, target, old, _ = moved_cell()
    # 4 cpu of production work that may go only to the source: its one victim is the held room
    h.submit("prod", cpu="4", priority=9, constraints=[f"host == {source}"])
    out = h.schedule()
    prod = h.task("prod")
    assert prod.state is R and prod.machine == source, prod.reason
    assert (name, source) in kills(out) and not h.state.draining
    assert h.state.tasks[name].state is R and h.state.tasks[name].machine == target


def test_a_task_whose_move_is_in_progress_is_not_moved_again():
    h, name, source, target, old, _ = moved_cell()
    r = Rebalancer(h.core, RebalanceConfig(enabled=True, max_moves=4, defragment=False))
    h.submit("train", tasks=2, cpu="4", gang=True)
    h.schedule()
    out = r.run(force=True)
    assert out.reply["moved"] and name not in [m["task"] for m in out.reply["moves"]]
    assert out.reply["stale"] == []  # the held room was never planned as a task to move
    again = RebalancePlan(moves=[Move(name, h.state.tasks[name].job, target, source, (), "start-first",
                                      "defragment", "back")])
    assert h.core._run("again", lambda step: r._apply(step, again)).reply["stale"] == [name]
    h.state.validate()
