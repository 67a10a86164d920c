"""Reclamation on the master (Borg §5.5): non-production work in reclaimed room, and what it gives back
when the room shrinks: memory by eviction (lowest priority first), CPU by a throttle the agent applies."""

import pytest

from corral.master.commands import KillTask, ReclaimedCpu, UsageReport
from corral.master.reclamation import MIN_CPU_MILLI, Held, cpu_allowances, memory_evictions
from corral.model.job import TaskState
from tests.master.helpers import Harness

GiB = 2**30


def held(task, priority=2, reclaimed=True, memory=2, reserved_cpu=1000, limit_cpu=1000, rose=False):
    return Held(task, f"{task}.alice/0", priority, reclaimed, limit_cpu, reserved_cpu, memory * GiB, rose)


WEB_ROSE = held("web", priority=9, reclaimed=False, memory=6, rose=True)
EVICTIONS = [
    ("nothing is evicted while the reservations fit the machine's memory",
     [WEB_ROSE, held("b1")], []),
    ("a reclaimed task is evicted when a production reservation rose past the memory",
     [WEB_ROSE, held("b1"), held("b2", reclaimed=False)], ["b1"]),
    ("the lowest priority goes first",
     [WEB_ROSE, held("b1", priority=5), held("b2", priority=1)], ["b2"]),
    ("inside a priority the larger goes first",
     [WEB_ROSE, held("b1", memory=1), held("b2", memory=3)], ["b2"]),
    ("a victim that was not needed after all is spared",
     # 6 + 1 + 3 + 1 = 11 on 8: b1 (priority 0, 1 GiB) then b2 (priority 1, 3 GiB) are taken; b2 alone is enough
     [WEB_ROSE, held("b1", priority=0, memory=1), held("b2", priority=1, memory=3),
      held("b3", priority=4, memory=1, reclaimed=False)],
     ["b2"]),
    ("tasks placed against limits are never evicted, whatever the total",
     [WEB_ROSE, held("b1", reclaimed=False), held("b2", reclaimed=False)], []),
    ("with no reservation risen (a restarted master's limits) nothing is evicted",
     [held("web", priority=9, reclaimed=False, memory=6), held("b1"), held("b2", reclaimed=False)], []),
    ("every reclaimed task goes if that is what it takes",
     [WEB_ROSE, held("b1", memory=3), held("b2", memory=3), held("b3", priority=3, memory=3)], ["b1", "b2", "b3"]),
]


@pytest.mark.parametrize("case, rows, evicted", EVICTIONS, ids=[c[0] for c in EVICTIONS])
def test_memory_evictions(case, rows, evicted):
    assert sorted(task for task, _ in memory_evictions(8 * GiB, rows)) == evicted


def test_the_reason_names_the_production_task_that_needed_its_memory():
    rows = [held("b0", priority=3, reclaimed=False, memory=1, rose=True), WEB_ROSE, held("b1", memory=3)]
    assert memory_evictions(8 * GiB, rows) == [
        ("b1", "evicted: production task web.alice/0 needed its reserved memory")]


ALLOWANCES = [
    ("no reclaimed task, nothing to say", [held("web", priority=9, reclaimed=False)], {}),
    ("reclaimed tasks keep their limits while the others' reservations leave room",
     [held("web", priority=9, reclaimed=False, reserved_cpu=2000), held("b1", limit_cpu=1000)], {"b1": 1000}),
    ("they share what is left in proportion to their limits",
     [held("web", priority=9, reclaimed=False, reserved_cpu=2500), held("b1", limit_cpu=1000),
      held("b2", limit_cpu=2000)], {"b1": 500, "b2": 1000}),
    ("with nothing left they keep the floor",
     [held("web", priority=9, reclaimed=False, reserved_cpu=4000), held("b1", limit_cpu=1000)],
     {"b1": MIN_CPU_MILLI}),
    ("tasks placed against limits count with their reservations",
     [held("b0", reclaimed=False, reserved_cpu=3000), held("b1", limit_cpu=2000)], {"b1": 1000}),
]


@pytest.mark.parametrize("case, rows, allowed", ALLOWANCES, ids=[c[0] for c in ALLOWANCES])
def test_cpu_allowances(case, rows, allowed):
    assert cpu_allowances(4000, rows) == allowed


# ---- through the core --------------------------------------------------------------------------------


def quiet_web():
    """A 4-core 8 GiB machine whose production service asks for 3 cores and 6 GiB but uses 0.5 core
    and 1 GiB, reported every second for 300 s: its reservation decays to 550 m and 1.1 GiB."""
    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi")
    h.submit("web", cpu="3", memory="6Gi", priority=9)
    h.schedule()
    web = h.task("web")
    for _ in range(301):
        h.run(UsageReport("m1", {web.name: (web.generation, 500, GiB)}))
        h.clock.advance(1.0)
    return h, web


def report(h, *usage):
    """A usage report of m1: (task, cpu millicores, memory GiB) each."""
    return h.run(UsageReport("m1", {t.name: (t.generation, cpu, int(gib * GiB)) for t, cpu, gib in usage}))


def test_batch_work_goes_in_reclaimed_room_and_is_marked_so():
    h, web = quiet_web()
    h.submit("batch", tasks=3, cpu="1", memory="2Gi", priority=2)
    out = h.schedule()
    tasks = [h.task("batch", i) for i in range(3)]
    assert all(t.state is TaskState.RUNNING and t.machine == "m1" for t in tasks)
    assert [t.reclaimed for t in tasks] == [False, True, True]  # one fits against limits (1 core, 2 GiB free)
    assert sorted(e.reclaimed for e in out.events if e.TYPE == "task_scheduled") == [False, True, True]
    logged = [d for d in h.store.read_since(0) if d["type"] == "task_scheduled" and ".batch." in d["task"]]
    assert sorted(d["reclaimed"] for d in logged) == [False, True, True]  # the field is logged
    web_reserved = h.core.reservations.reservation_of(web)  # about 550 m and 1.1 GiB
    assert abs(web_reserved[1] - 1.1 * GiB) < 2**10
    assert h.state.view.reserved[0].tolist()[:2] == [web_reserved[0] + 3000, web_reserved[1] + 6 * GiB]


def test_production_is_not_placed_in_reclaimed_room():
    h, web = quiet_web()
    h.submit("api", cpu="1", memory="3Gi", priority=9)  # 2 GiB free by limits
    h.schedule()
    api = h.task("api")
    assert api.state is TaskState.PENDING and "insufficient memory" in api.reason


def test_when_production_memory_rises_the_reclaimed_task_is_evicted_with_the_reason():
    h, web = quiet_web()
    h.submit("batch", tasks=2, cpu="1", memory="2Gi", priority=2)
    h.schedule()
    b0, b1 = h.task("batch", 0), h.task("batch", 1)
    assert (b0.reclaimed, b1.reclaimed) == (False, True)
    out = report(h, (web, 500, 5.5), (b0, 100, 1), (b1, 100, 1))  # web's reservation: its 6 GiB limit
    reason = "evicted: production task web.alice/0 needed its reserved memory"
    assert b1.state is TaskState.PENDING and b1.reason == reason and not b1.reclaimed
    assert b1.history[-1].via == "evict" and b1.history[-1].note == reason
    assert [e.task for e in out.effects if isinstance(e, KillTask)] == [b1.name]
    assert b0.state is TaskState.RUNNING  # placed against limits: never evicted for the room
    assert out.reply["evicted"] == [b1.name]


def test_when_production_cpu_rises_the_agent_is_told_the_reclaimed_tasks_share():
    h, web = quiet_web()
    h.submit("batch", tasks=2, cpu="1", memory="2Gi", priority=2)
    h.schedule()
    b0, b1 = h.task("batch", 0), h.task("batch", 1)
    out = report(h, (web, 500, 1), (b0, 900, 1), (b1, 900, 1))
    sent = [e for e in out.effects if isinstance(e, ReclaimedCpu)]
    assert [(e.machine, e.address, e.cpu) for e in sent] == [("m1", "http://m1", {b1.name: 1000})]
    out = report(h, (web, 2000, 1), (b0, 900, 1), (b1, 900, 1))  # web reserves 2.2 cores at once
    (sent,) = [e for e in out.effects if isinstance(e, ReclaimedCpu)]
    assert sent.cpu == {b1.name: 4000 - 2200 - 1000}  # what web and b0 (at its limit) leave
    assert b1.state is TaskState.RUNNING


def test_the_agent_is_told_once_more_when_the_last_reclaimed_task_left():
    h, web = quiet_web()
    h.submit("batch", tasks=2, cpu="1", memory="2Gi", priority=2)
    h.schedule()
    b0, b1 = h.task("batch", 0), h.task("batch", 1)
    report(h, (web, 500, 1), (b1, 100, 1))
    out = report(h, (web, 500, 5.5))  # b1 is evicted
    assert [e.cpu for e in out.effects if isinstance(e, ReclaimedCpu)] == [{}]
    out = report(h, (web, 500, 5.5))
    assert not [e for e in out.effects if isinstance(e, ReclaimedCpu)]


def test_with_reclamation_off_batch_waits_for_limits():
    from corral.sched.scheduler import Scheduler, SchedulerConfig

    h = Harness(scheduler=Scheduler(SchedulerConfig(reclamation=False)))
    h.machine("m1", cpu="4", memory="8Gi")
    h.submit("web", cpu="3", memory="6Gi", priority=9)
    h.schedule()
    web = h.task("web")
    for _ in range(301):
        h.run(UsageReport("m1", {web.name: (web.generation, 500, GiB)}))
        h.clock.advance(1.0)
    h.submit("batch", tasks=2, cpu="1", memory="2Gi", priority=2)
    h.schedule()
    assert [h.task("batch", i).state for i in range(2)] == [TaskState.RUNNING, TaskState.PENDING]


def test_a_rebuilt_master_keeps_the_reclaimed_mark_and_does_not_evict_on_its_limits():
    h, web = quiet_web()
    h.submit("batch", tasks=2, cpu="1", memory="2Gi", priority=2)
    h.schedule()
    state = h.core.rebuild(h.store)
    assert state.tasks[h.task("batch", 1).name].reclaimed
    assert state.to_dict() == h.state.to_dict()
    from corral.master.core import MasterCore

    core = MasterCore(state=state, clock=h.clock, validate=True)
    b1 = state.tasks[h.task("batch", 1).name]
    out = core.handle(UsageReport("m1", {web.name: (web.generation, 500, GiB), b1.name: (b1.generation, 100, GiB)}))
    assert not out.events  # every reservation starts at its limit again: nothing rose, nothing evicted


def test_the_api_views_and_the_cli_tables_show_the_reclaimed_mark():
    from corral.cli.client import placed_on
    from corral.master.views import task_view, why_view

    h, web = quiet_web()
    h.submit("batch", tasks=2, cpu="1", memory="2Gi", priority=2)
    h.schedule()
    b0, b1 = h.task("batch", 0), h.task("batch", 1)
    now = h.clock.now()
    assert [task_view(h.state, t, now).reclaimed for t in (web, b0, b1)] == [False, False, True]
    why = why_view(b1, now)
    assert why.reclaimed and "in reclaimed room" in why.summary
    assert "reclaimed" not in why_view(b0, now).summary
    shown = task_view(h.state, b1, now).model_dump()
    assert placed_on(shown) == "m1 (reclaimed)" and placed_on(task_view(h.state, b0, now).model_dump()) == "m1"


def test_a_reservation_that_rose_between_snapshot_and_commit_makes_the_reclaimed_placement_stale():
    h, web = quiet_web()
    h.submit("batch", tasks=2, cpu="1", memory="2Gi", priority=2)
    rnd = h.core.snapshot()
    plan = h.core.scheduler.schedule(rnd.view, rnd.pending)
    assert [p.reclaimed for p in plan.placements] == [False, True]
    report(h, (web, 500, 5.5))  # the live master's link reports while the round plans: 6 GiB reserved
    out = h.commit(rnd, plan)
    b0, b1 = h.task("batch", 0), h.task("batch", 1)
    assert out.reply["stale"] == [b1.name] and b1.state is TaskState.PENDING
    assert b0.state is TaskState.RUNNING and not b0.reclaimed


def test_parked_batch_work_is_placed_once_reservations_decay_and_leave_room():
    h = Harness()
    h.machine("m1", cpu="4", memory="8Gi")
    h.submit("web", cpu="3", memory="6Gi", priority=9)
    h.schedule()
    web = h.task("web")
    h.submit("batch", tasks=2, cpu="1", memory="2Gi", priority=2)
    h.schedule()
    b1 = h.task("batch", 1)
    assert b1.state is TaskState.PENDING and "insufficient" in b1.reason  # parked: limits are full
    for _ in range(301):  # web stays quiet: its reservation decays, nothing in the state changes
        h.run(UsageReport("m1", {web.name: (web.generation, 500, GiB)}))
        h.clock.advance(1.0)
    assert h.core.time_may_change_plan()  # reservations the view has not been given yet
    h.schedule()
    assert b1.state is TaskState.RUNNING and b1.reclaimed
