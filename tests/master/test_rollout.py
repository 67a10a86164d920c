"""Rolling updates: at most max_unavailable tasks down at once; scaling in place."""

from __future__ import annotations

import pytest

from corral.master.commands import Kill, KillTask, StartTask, Tick, Update
from corral.model.job import JobState, TaskState

from tests.master.helpers import Harness, spec

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


def running_job(tasks: int, cpu: str = "16") -> Harness:
    h = Harness()
    h.machine("m1", cpu=cpu, memory="64Gi")
    h.submit("web", tasks=tasks)
    h.schedule()
    assert all(t.state is R for t in h.state.tasks_of("web.alice"))
    return h


def restarted(out) -> list[int]:
    return sorted(int(e.task.split(".")[0]) for e in out.events if e.TYPE == "task_ended" and e.via == "restart")


# (case, tasks, max_unavailable, restarted by the update, then by each round + Tick)
ROLLS = [
    ("max_unavailable 1 restarts one task at a time", 3, 1, [0], [[1], [2], []]),
    ("max_unavailable 2 restarts two tasks at a time", 4, 2, [0, 1], [[2, 3], []]),
    ("max_unavailable above the task count restarts every task at once", 2, 5, [0, 1], [[]]),
]


@pytest.mark.parametrize("case,tasks,max_unavailable,first,then", ROLLS, ids=[c[0] for c in ROLLS])
def test_a_rolling_update_keeps_at_most_max_unavailable_tasks_down(case, tasks, max_unavailable, first, then):
    h = running_job(tasks)
    out = h.run(Update(spec("web", tasks=tasks, memory="2Gi"), max_unavailable=max_unavailable))
    assert out.reply["restart"] is True and out.reply["version"] == 2
    assert [e.TYPE for e in out.events][0] == "job_updated" and out.events[0].max_unavailable == max_unavailable
    assert restarted(out) == first
    kills = [e for e in out.effects if isinstance(e, KillTask)]
    assert sorted(k.task for k in kills) == [f"{i}.web.alice.local" for i in first]
    assert all(k.reason == "rolling update to version 2" for k in kills)
    down = first
    for expected in then:
        assert sum(t.state is P for t in h.state.tasks_of("web.alice")) == len(down) <= max_unavailable
        # Nothing more rolls while the restarted tasks are still pending.
        assert restarted(h.run(Tick())) == []
        placed = h.schedule()
        assert sorted(int(e.task.split(".")[0]) for e in placed.effects if isinstance(e, StartTask)) == down
        down = restarted(h.run(Tick()))
        assert down == expected
    tasks_now = h.state.tasks_of("web.alice")
    assert {(t.state, t.version) for t in tasks_now} == {(R, 2)}
    assert "web.alice" not in h.state.rolling
    assert all(t.request.resources.memory == 2 * 2**30 for t in tasks_now if t.state is R)


def test_a_restarted_task_pending_for_lack_of_room_holds_the_budget():
    h = running_job(2, cpu="2")  # no spare room: the restarted task cannot come back at 2 cpu
    h.run(Update(spec("web", tasks=2, cpu="2"), max_unavailable=1))
    h.schedule()
    assert restarted(h.run(Tick())) == []
    assert [t.state for t in h.state.tasks_of("web.alice")] == [P, R]
    assert h.task("web", 1).version == 1 and "web.alice" in h.state.rolling


# (case, tasks before, tasks after, effects' tasks killed, states after)
SCALES = [
    ("scaling down kills the highest-indexed running tasks", 3, 1, ["1.web.alice.local", "2.web.alice.local"],
     [R, D, D]),
    ("scaling up adds pending tasks and keeps the running ones", 1, 3, [], [R, P, P]),
]


@pytest.mark.parametrize("case,before,after,killed,states", SCALES, ids=[c[0] for c in SCALES])
def test_scaling_happens_in_place(case, before, after, killed, states):
    h = running_job(before)
    generations = {t.name: t.generation for t in h.state.tasks_of("web.alice")}
    out = h.run(Update(spec("web", tasks=after)))
    assert out.reply["changed"] == ["tasks"] and out.reply["restart"] is False
    assert [e.TYPE for e in out.events] == ["job_updated"]
    kills = [e for e in out.effects if isinstance(e, KillTask)]
    assert sorted(k.task for k in kills) == killed
    assert all(k.reason == "the job was scaled down" for k in kills)
    assert [t.state for t in h.state.tasks_of("web.alice")] == states
    assert h.task("web", 0).generation == generations[h.task("web", 0).name]  # not restarted
    assert h.state.jobs["web.alice"].state is JobState.RUNNING
    assert "web.alice" not in h.state.rolling


def test_scaling_a_pending_job_down_leaves_its_remaining_tasks_pending():
    h = Harness()
    h.submit("web", tasks=3)
    out = h.run(Update(spec("web", tasks=1)))
    assert out.effects == [] and out.reply["state"] == "pending"
    assert [t.state for t in h.state.tasks_of("web.alice")] == [P, D, D]
    assert list(h.state.pending) == ["0.web.alice.local"]


def test_a_priority_change_keeps_tasks_running_on_the_new_version():
    h = running_job(2)
    out = h.run(Update(spec("web", tasks=2, priority=5)))
    assert out.effects == [] and out.reply["restart"] is False
    assert {(t.state, t.version) for t in h.state.tasks_of("web.alice")} == {(R, 2)}
    assert all(t.request.priority == 5 for t in h.state.tasks_of("web.alice"))


def test_a_restart_that_also_scales_down_kills_the_dropped_tasks_and_rolls_the_rest():
    h = running_job(3)
    out = h.run(Update(spec("web", tasks=1, memory="2Gi"), max_unavailable=1))
    assert [(e.task, e.reason) for e in out.effects if isinstance(e, KillTask)] == [
        ("1.web.alice.local", "the job was scaled down"), ("2.web.alice.local", "the job was scaled down"),
        ("0.web.alice.local", "rolling update to version 2")]
    assert [(e.TYPE, getattr(e, "via", None)) for e in out.events] == [("job_updated", None), ("task_ended", "restart")]
    assert [t.state for t in h.state.tasks_of("web.alice")] == [P, D, D]


def test_new_tasks_of_a_restart_that_scales_up_hold_the_budget_until_placed():
    h = running_job(2)
    out = h.run(Update(spec("web", tasks=4, memory="2Gi"), max_unavailable=1))
    assert restarted(out) == []  # two new tasks pending: the budget of 1 is spent
    h.schedule()
    assert restarted(h.run(Tick())) == [0]


def test_killing_a_job_mid_roll_kills_its_running_tasks_and_ends_the_roll():
    h = running_job(3)
    h.run(Update(spec("web", tasks=3, memory="2Gi")))
    out = h.run(Kill("web.alice"))
    assert sorted(e.task for e in out.effects if isinstance(e, KillTask)) == ["1.web.alice.local",
                                                                            "2.web.alice.local"]
    assert "web.alice" not in h.state.rolling and h.state.jobs["web.alice"].old_specs == {}
