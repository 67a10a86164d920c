"""Speculative copies in the master: when a straggler is copied, where, who wins, what a rebuild holds."""

from __future__ import annotations

from corral.master.commands import AgentReport, Kill, KillTask, StartTask, Tick
from corral.master.core import MasterCore
from corral.sched.speculation import SpeculationConfig
from tests.master.helpers import Harness

CONFIG = SpeculationConfig(factor=1.5, quantile=0.9, min_finished=3, per_job=1, per_cell=2)


def status(task, state, generation=1, **more):
    return {"task_id": task, "state": state, "generation": generation, **more}


def cell(**submit):
    h = Harness(speculation=CONFIG)
    h.machine("m1", cpu="4", rack="r1")
    h.machine("m2", cpu="4", rack="r1")
    h.machine("m3", cpu="2", rack="r2")
    h.submit("sort", tasks=4, cpu="1", **submit)
    h.schedule()
    return h


def finish(h, index, after):
    """Task ``index`` of sort finishes ``after`` seconds from now, on its machine."""
    h.clock.advance(after)
    t = h.task("sort", index)
    return h.run(AgentReport(t.machine, [status(t.name, "finished", t.generation, exit_code=0)], full=False))


def straggling(h):
    """Three siblings finish in about 5 s; task 3 is still running at 20 s."""
    for i in range(3):
        finish(h, i, 5.0 if i == 0 else 0.0)
    h.clock.advance(15.0)
    return h.run(Tick())


def test_no_copy_before_enough_siblings_finished():
    h = cell()
    finish(h, 0, 5.0)
    finish(h, 1, 0.0)
    h.clock.advance(100.0)
    assert h.run(Tick()).events == [] and h.state.copies == {}


def test_a_straggler_gets_one_copy_on_another_rack_and_the_event_says_why():
    h = cell()
    slow = h.task("sort", 3)
    out = straggling(h)
    [event] = out.events
    assert event.TYPE == "copy_scheduled" and event.task == slow.name and event.copy == 1
    assert event.machine == "m3"  # not its machine, not its rack (m1 and m2 share r1)
    assert event.note == "speculative copy of 3.sort.alice: running 20 s, siblings' p90 5 s × 1.5"
    [start] = [e for e in out.effects if isinstance(e, StartTask)]
    assert start.task == f"{slow.name}.copy1" and start.launch["copy"] == 1 and start.launch["name"] == slow.name
    assert h.core.assignments("m3") == [f"{slow.name}.copy1"]
    h.clock.advance(100.0)
    assert h.run(Tick()).events == []  # each task is copied once


def test_no_machine_outside_its_failure_domain_means_no_copy():
    h = Harness(speculation=CONFIG)
    h.machine("m1", rack="r1")
    h.machine("m2", rack="r1")
    h.submit("sort", tasks=4, cpu="1")
    h.schedule()
    assert straggling(h).events == []


def test_speculation_false_and_production_are_never_copied():
    assert straggling(cell(speculation=False)).events == []
    assert straggling(cell(priority=9)).events == []
    assert straggling(cell(appclass="latency-sensitive")).events == []


def test_turning_speculation_off_is_an_update_in_place():
    from corral.master.commands import Update
    from tests.master.helpers import spec

    h = cell()
    out = h.run(Update(spec("sort", tasks=4, cpu="1", speculation=False)))
    assert not [e for e in out.events if getattr(e, "via", "") == "restart"]
    assert h.task("sort", 3).state.value == "running"
    assert straggling(h).events == []


def test_the_cell_budget_bounds_copies_across_jobs():
    h = Harness(speculation=SpeculationConfig(min_finished=1, per_job=5, per_cell=1))
    h.machine("m1", cpu="8")
    h.machine("m2", cpu="8")
    h.submit("a", tasks=2, cpu="1")
    h.submit("b", tasks=2, cpu="1")
    h.schedule()
    for job in ("a", "b"):
        t = h.task(job, 0)
        h.run(AgentReport(t.machine, [status(t.name, "finished", t.generation)], full=False))
    h.clock.advance(100.0)
    out = h.run(Tick())
    assert [e.TYPE for e in out.events] == ["copy_scheduled"] and len(h.state.copies) == 1


def test_the_copy_wins_the_task_finishes_once_and_the_first_copy_is_killed():
    h = cell()
    straggling(h)
    slow = h.task("sort", 3)
    first = slow.machine
    free_before = h.state.view.free.copy()
    out = h.run(AgentReport("m3", [status(f"{slow.name}.copy1", "finished", slow.generation, exit_code=0)],
                            full=False))
    assert [e.TYPE for e in out.events] == ["copy_ended", "task_ended"]
    assert out.events[0].via == "won" and out.events[1].via == "finish"
    assert [(k.task, k.machine) for k in out.effects if isinstance(k, KillTask)] == [(slow.name, first)]
    assert h.state.jobs["sort.alice"].state.value == "succeeded"
    assert h.state.copies == {} and len(h.state.view.where) == 0
    assert (h.state.view.free >= free_before).all()  # both copies' resources came back
    # the first copy's late "finished" changes nothing: the task is counted once
    again = h.run(AgentReport(first, [status(slow.name, "finished", slow.generation)], full=False))
    assert again.events == []
    assert sum(1 for t in slow.history if t.via == "finish") == 1


def test_the_first_copy_wins_and_the_copy_is_killed():
    h = cell()
    straggling(h)
    slow = h.task("sort", 3)
    out = h.run(AgentReport(slow.machine, [status(slow.name, "finished", slow.generation)], full=False))
    assert [(e.TYPE, getattr(e, "via", "")) for e in out.events] == [("copy_ended", "lost"), ("task_ended", "finish")]
    assert [(k.task, k.machine) for k in out.effects if isinstance(k, KillTask)] == [(f"{slow.name}.copy1", "m3")]
    late = h.run(AgentReport("m3", [status(f"{slow.name}.copy1", "finished", slow.generation)], full=False))
    assert late.events == [] and h.state.jobs["sort.alice"].state.value == "succeeded"


def test_a_killed_job_kills_its_copies_too():
    h = cell()
    straggling(h)
    out = h.run(Kill("sort.alice"))
    kills = {(k.task, k.machine) for k in out.effects if isinstance(k, KillTask)}
    assert ("3.sort.alice.local.copy1", "m3") in kills and h.state.copies == {}
    assert len(h.state.view.where) == 0


def test_a_failed_copy_leaves_its_task_running():
    h = cell()
    straggling(h)
    slow = h.task("sort", 3)
    out = h.run(AgentReport("m3", [status(f"{slow.name}.copy1", "failed", slow.generation, exit_code=1)], full=False))
    assert [(e.TYPE, e.via) for e in out.events] == [("copy_ended", "fail")]
    assert slow.state.value == "running" and h.state.copies == {}


def test_a_stray_copy_on_a_full_report_is_killed():
    h = cell()
    out = h.run(AgentReport("m2", [status("0.sort.alice.local.copy7", "running")]))
    assert [(k.task, k.machine) for k in out.effects if isinstance(k, KillTask)] == [("0.sort.alice.local.copy7", "m2")]


def test_a_rebuild_from_the_log_holds_the_same_copies():
    h = cell()
    straggling(h)
    rebuilt = MasterCore.rebuild(h.store)
    assert rebuilt.to_dict() == h.state.to_dict() and "copies" in rebuilt.to_dict()
    assert rebuilt.copies["3.sort.alice.local"].machine == "m3"
    rebuilt.validate()
    from corral.master.state import CellState
    again = CellState.from_dict(h.state.to_dict())  # and a checkpoint
    again.validate()
    assert again.to_dict() == h.state.to_dict()


def test_the_task_views_show_the_copy_and_why():
    from corral.cli.client import placed_on
    from corral.master import views

    h = cell()
    straggling(h)
    slow = h.task("sort", 3)
    view = views.task_view(h.state, slow, h.clock.now())
    assert view.speculative_copy.number == 1 and view.speculative_copy.machine == "m3"
    assert view.speculative_copy.reason.startswith("speculative copy of 3.sort.alice")
    assert placed_on(view.model_dump()) == f"{slow.machine} + copy on m3"
    why = views.why_view(slow, h.clock.now(), h.state)
    assert "its copy 1 runs on m3 (speculative copy of 3.sort.alice: running 20 s" in why.summary
    assert views.task_view(h.state, h.task("sort", 0), h.clock.now()).speculative_copy is None


def test_alloc_sets_and_their_tasks_are_never_copied():
    from corral.master.commands import Submit

    h = Harness(speculation=SpeculationConfig(min_finished=1))
    h.machine("m1", cpu="8")
    h.machine("m2", cpu="8")
    h.run(Submit({"kind": "allocset", "name": "pool", "user": "alice", "count": 2,
                  "resources": {"cpu": 2, "memory": "2Gi"}}))
    h.schedule()
    h.submit("in", tasks=2, cpu="1", alloc="pool", alloc_placement="any")
    h.schedule()
    done = h.task("in", 0)
    h.run(AgentReport(done.machine, [status(done.name, "finished", done.generation)], full=False))
    h.submit("free", tasks=2, cpu="1")  # the same shape outside an alloc is copied: the rule would fire
    h.schedule()
    done = h.task("free", 0)
    h.run(AgentReport(done.machine, [status(done.name, "finished", done.generation)], full=False))
    h.clock.advance(1000.0)
    assert h.task("in", 1).state.value == "running" and h.task("in", 0).history[-1].via == "finish"
    assert [e.task for e in h.run(Tick()).events] == ["1.free.alice.local"]


def test_usage_reports_from_a_machine_running_a_copy_leave_the_copy_alone():
    from corral.master.commands import UsageReport

    h = cell()
    straggling(h)
    copy = h.state.copies["3.sort.alice.local"]
    h.run(UsageReport("m3", {copy.id: (copy.generation, 900, 512 << 20)}))
    h.clock.advance(60.0)
    out = h.run(UsageReport("m3", {copy.id: (copy.generation, 900, 512 << 20)}))
    assert out.events == [] and h.state.copies["3.sort.alice.local"] is copy


def test_a_lost_machine_takes_its_copy_and_a_lost_task_takes_its_copy_with_a_kill():
    from corral.master.commands import MachineDown

    h = cell()
    straggling(h)
    slow = h.task("sort", 3)
    out = h.run(MachineDown("m3"))  # the copy's machine
    assert h.state.copies == {} and slow.state.value == "running"
    assert not [k for k in out.effects if isinstance(k, KillTask) and k.task.endswith(".copy1")]
    h.state.validate()

    h = cell()
    straggling(h)
    slow = h.task("sort", 3)
    out = h.run(MachineDown(slow.machine))  # the task's own machine: its copy goes too, killed where it runs
    assert h.state.copies == {}
    assert [(k.task, k.machine) for k in out.effects if isinstance(k, KillTask)] == [(f"{slow.name}.copy1", "m3")]
    h.state.validate()


def test_sibling_runtimes_are_kept_between_ticks_and_read_again_when_a_task_ends(monkeypatch):
    from corral.master import speculation

    h = cell()
    walks = []
    real = speculation.finished_runtimes
    monkeypatch.setattr(speculation, "finished_runtimes", lambda tasks: walks.append(1) or real(tasks))
    siblings = speculation.SiblingRuntimes()
    job = h.state.jobs[h.task("sort", 0).job]
    for i in range(2):
        finish(h, i, 5.0)
    assert siblings(h.state, job) == [5.0, 10.0]
    assert siblings(h.state, job) == [5.0, 10.0] and len(walks) == 1  # nothing ended: kept
    finish(h, 2, 1.0)
    assert siblings(h.state, job) == real(h.state.tasks_of(job.id)) == [5.0, 10.0, 11.0] and len(walks) == 2
    siblings.keep_only(set())
    assert siblings._kept == {}  # the job no longer runs: forgotten
