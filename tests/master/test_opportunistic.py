"""Opportunistic tasks (Apollo): beyond quota, never charged, preempted first, upgraded in place."""

from __future__ import annotations

import numpy as np
import pytest

from corral.master.commands import AgentReport, Kill, StartTask, KillTask, Submit, Tick, Update, UpgradeTask
from corral.master.core import MasterCore
from corral.master.errors import AdmissionError
from corral.master.events import TaskUpgraded
from corral.master.quota import Quotas
from corral.master.state import CellState
from corral.model.job import TaskState
from corral.model.priority import Band
from corral.model.resources import CPU

from tests.master.helpers import Harness, spec

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD
QUOTA = Quotas.parse({"alice": {"batch": {"cpu": 4, "memory": "64Gi"}},
                      "bob": {"production": {"cpu": 16, "memory": "64Gi"}}})


def cpu_charged(h: Harness, user: str = "alice", band: Band = Band.BATCH) -> float:
    return int(h.state.usage_of(user, band)[CPU]) / 1000


def finish(h: Harness, task) -> None:
    h.run(AgentReport(task.machine, [{"task_id": task.name, "generation": task.generation, "state": "finished",
                                      "exit_code": 0}]))


def same_state_rebuilt(h: Harness) -> None:
    rebuilt = MasterCore.rebuild(h.store)
    assert rebuilt.to_dict() == h.state.to_dict()
    assert list(rebuilt.opportunistic) == list(h.state.opportunistic)
    def charged(state):  # (a band charged once and given back keeps a zero entry: the same as none)
        return {k: v.tolist() for k, v in state.usage.items() if v.any()}

    assert charged(rebuilt) == charged(h.state)
    restored = CellState.from_dict(h.state.to_dict())  # and a checkpoint
    assert list(restored.opportunistic) == list(h.state.opportunistic)
    restored.validate()


def test_tasks_within_quota_are_regular_the_rest_opportunistic_and_never_charged():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=6, opportunistic=True)
    kinds = [bool(h.task("a", i).opportunistic) for i in range(6)]
    assert kinds == [False] * 4 + [True] * 2
    assert cpu_charged(h) == 4  # the 2 opportunistic tasks count nothing
    with pytest.raises(AdmissionError, match="quota.batch.cpu"):  # the quota is full of regular tasks
        h.submit("b", tasks=1)
    same_state_rebuilt(h)


def test_a_count_caps_the_opportunistic_tasks_and_a_refusal_names_both_fields():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=5, opportunistic=1)
    assert [bool(h.task("a", i).opportunistic) for i in range(5)] == [False] * 4 + [True]
    before = h.state.to_dict()
    with pytest.raises(AdmissionError) as err:
        h.submit("b", tasks=3, opportunistic=2)  # none fits: 3 would have to be opportunistic
    fields = [f for f, _ in err.value.errors]
    assert err.value.status == 422 and "quota.batch.cpu" in fields and "opportunistic" in fields
    assert "3 of its tasks would run opportunistically, at most 2 may" in str(err.value)
    assert h.state.to_dict() == before


def test_within_quota_a_job_with_opportunistic_runs_only_regular_tasks():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=3, opportunistic=True)
    assert not h.state.opportunistic and cpu_charged(h) == 3


@pytest.mark.parametrize("fields,message", [
    ({"opportunistic": "yes"}, "expected true, false or a number of tasks"),
    ({"opportunistic": -2}, "expected true, false or a number of tasks"),
    ({"opportunistic": True, "priority": 9}, "below the production band"),
    ({"opportunistic": True, "gang": True}, "without gang or min_tasks"),
    ({"opportunistic": 2, "min_tasks": 1}, "without gang or min_tasks"),
], ids=["a string", "a negative count", "a production job", "a gang", "a job with min_tasks"])
def test_a_bad_opportunistic_spec_is_refused_naming_the_field(fields, message):
    h = Harness(quotas=QUOTA)
    with pytest.raises(AdmissionError) as err:
        h.submit("a", tasks=2, **fields)
    assert err.value.status == 400
    assert [f for f, _ in err.value.errors] == ["opportunistic"] and message in err.value.errors[0][1]
    assert h.state.seq == 0


def test_opportunistic_tasks_are_placed_at_priority_zero_in_idle_room_and_preempt_nothing():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="5")
    h.submit("a", tasks=6, opportunistic=True)
    h.schedule()
    placed = [h.task("a", i) for i in range(6)]
    assert sum(t.state is R for t in placed) == 5  # 4 regular + 1 opportunistic in the idle cpu
    assert all(t.state is R for t in placed[:4])
    extra = [t for t in placed[4:] if t.state is R][0]
    assert extra.request.priority == 0 and extra.request.opportunistic
    waiting = [t for t in placed[4:] if t.state is P][0]
    assert h.core.pending_reason(waiting)[0]  # it waits with a reason, and evicted nobody
    assert "preempts nothing" in h.core.pending_reason(waiting)[0]


def test_opportunistic_tasks_are_preempted_before_best_effort_and_batch_tasks():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="3")
    h.submit("regular", tasks=1)
    h.submit("hold", tasks=3, constraints=["host == nowhere"])  # pending, charged: alice's quota is full
    h.submit("extra", tasks=1, opportunistic=True)
    h.submit("be", user="carol", tasks=1, priority=0)  # priority 0: never limited
    h.schedule()
    opp, be, regular = h.task("extra"), h.task("be", user="carol"), h.task("regular")
    assert opp.opportunistic and all(t.state is R for t in (opp, be, regular))
    h.submit("prod", user="bob", tasks=1, priority=9)
    h.schedule()
    assert opp.state is P and be.state is R and regular.state is R  # the opportunistic one went first
    assert "an opportunistic task goes first" in opp.history[-1].note
    h.submit("prod2", user="bob", tasks=1, priority=9)
    h.schedule()
    assert be.state is P and regular.state is R  # then the lowest band, best-effort
    same_state_rebuilt(h)


def test_a_machine_with_only_opportunistic_victims_is_chosen_over_one_regular_victim():
    h = Harness(quotas=Quotas.parse({"alice": {"batch": {"cpu": 2, "memory": "64Gi"}},
                                     "bob": {"production": {"cpu": 16, "memory": "64Gi"}}}))
    h.machine("m1", cpu="2")
    h.machine("m2", cpu="2")
    h.submit("big", cpu="2", constraints=["host == m1"])  # alice's whole quota, on m1
    h.submit("small", tasks=2, opportunistic=True, constraints=["host == m2"])  # both opportunistic
    h.schedule()
    assert h.task("big").machine == "m1" and {h.task("small", i).machine for i in (0, 1)} == {"m2"}
    h.submit("prod", user="bob", cpu="2", priority=9)
    h.schedule()
    assert h.task("prod", user="bob").machine == "m2"  # two opportunistic victims, not one regular
    assert h.task("big").state is R and all(h.task("small", i).state is P for i in (0, 1))


def test_when_a_regular_task_ends_the_oldest_opportunistic_task_is_upgraded_in_place():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="8")
    h.submit("a", tasks=4)
    h.submit("b", tasks=2, opportunistic=True)
    h.submit("c", tasks=1, opportunistic=True)
    h.schedule()
    b0, b1, c0 = h.task("b", 0), h.task("b", 1), h.task("c", 0)
    assert all(t.state is R and t.opportunistic for t in (b0, b1, c0))
    machine, generation = b0.machine, b0.generation
    finish(h, h.task("a", 0))
    assert not b0.opportunistic and b1.opportunistic and c0.opportunistic  # oldest first
    assert b0.state is R and b0.machine == machine and b0.generation == generation
    assert b0.request.priority == 2 and not b0.request.opportunistic
    assert b0.history[-1].via == "upgrade" and b0.history[-1].new == "running"
    assert cpu_charged(h) == 4
    out = h.run(Kill("a.alice"))  # 3 more cpu of quota: b1 and c0, oldest first
    upgraded = [e.task for e in out.events if isinstance(e, TaskUpgraded)]
    assert upgraded == [b1.name, c0.name]
    # no restart: each agent is sent the same generation again, no longer opportunistic (an upgrade in place)
    assert not any(isinstance(e, StartTask) for e in out.effects)  # no start
    starts = [e for e in out.effects if isinstance(e, UpgradeTask)]
    assert [(e.task, e.machine, e.launch["generation"]) for e in starts] == [
        (t.name, t.machine, t.generation) for t in (b1, c0)]
    assert all("opportunistic" not in e.launch for e in starts)
    assert {e.task for e in out.effects if isinstance(e, KillTask)} == {h.task("a", i).name for i in (1, 2, 3)}
    assert not h.state.opportunistic and cpu_charged(h) == 3
    assert h.schedule().effects == []  # nothing to start again
    same_state_rebuilt(h)


def test_an_upgraded_pending_task_is_scheduled_as_a_regular_one():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=4)
    h.submit("b", tasks=1, opportunistic=True)
    h.run(Kill("a.alice"))
    assert not h.task("b").opportunistic and h.task("b").state is P
    h.machine("m1")
    h.schedule()
    assert h.task("b").state is R and h.task("b").request.priority == 2
    same_state_rebuilt(h)


def test_a_raised_quota_upgrades_at_the_next_tick():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="8")
    h.submit("a", tasks=6, opportunistic=True)
    h.schedule()
    assert len(h.state.opportunistic) == 2
    h.core.quotas = Quotas.parse({"alice": {"batch": {"cpu": 5, "memory": "64Gi"}}})  # one more cpu
    out = h.run(Tick())
    assert [e.task for e in out.events if isinstance(e, TaskUpgraded)] == [h.task("a", 4).name]
    assert h.task("a", 5).opportunistic and cpu_charged(h) == 5
    same_state_rebuilt(h)


def test_the_oldest_opportunistic_task_is_never_passed_over_for_a_smaller_younger_one():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=3)
    h.submit("b", tasks=2, cpu="2", opportunistic=True)  # 1 cpu left: neither fits
    h.submit("c", tasks=1, opportunistic=True)  # fits the last cpu: regular
    h.submit("d", tasks=1, opportunistic=True)  # 1 cpu, opportunistic, younger than b's
    assert [bool(h.task("b", i).opportunistic) for i in (0, 1)] == [True, True]
    assert not h.task("c").opportunistic and h.task("d").opportunistic
    out = h.run(Kill("c.alice"))  # 1 cpu free: d would fit, b/0 (2 cpu) is older and does not
    assert not [e for e in out.events if isinstance(e, TaskUpgraded)] and h.task("d").opportunistic
    out = h.run(Kill("a.alice"))  # 4 cpu free: b/0 and b/1, then nothing is left for d
    assert [e.task for e in out.events if isinstance(e, TaskUpgraded)] == [h.task("b", 0).name, h.task("b", 1).name]
    assert h.task("d").opportunistic and cpu_charged(h) == 4
    same_state_rebuilt(h)


def test_a_finished_regular_task_gives_its_quota_back():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="8")
    h.submit("a", tasks=4)
    h.schedule()
    finish(h, h.task("a", 0))
    assert cpu_charged(h) == 3
    h.submit("b", tasks=1)  # fits now
    same_state_rebuilt(h)


def test_an_update_scaling_up_beyond_quota_adds_opportunistic_tasks_and_keeps_the_cap():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=3, opportunistic=True)
    out = h.run(Update(spec("a", tasks=6, opportunistic=True)))
    assert out.events[0].opportunistic == 2
    assert [bool(h.task("a", i).opportunistic) for i in range(6)] == [False] * 4 + [True] * 2
    assert cpu_charged(h) == 4
    with pytest.raises(AdmissionError) as err:
        h.run(Update(spec("a", tasks=6, opportunistic=1)))
    assert err.value.errors[0][0] == "opportunistic" and "has 2 opportunistic tasks" in err.value.errors[0][1]
    h.run(Update(spec("a", tasks=4, opportunistic=True)))  # scaled down: the opportunistic ones go
    assert not h.state.opportunistic and cpu_charged(h) == 4
    same_state_rebuilt(h)


def test_a_log_from_before_opportunistic_tasks_reads_as_all_regular():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=2)
    logged = [e for e in h.store.read_since(0)]
    for e in logged:
        e.pop("opportunistic", None)
    state = CellState()
    for e in logged:
        state.apply(e)
    assert not state.opportunistic and np.array_equal(state.usage_of("alice", Band.BATCH), h.state.usage_of("alice", Band.BATCH))


def test_best_effort_work_evicts_opportunistic_tasks_even_after_it_was_parked():
    h = Harness(quotas=QUOTA)
    h.machine("m1", cpu="2")
    h.submit("hold", tasks=4, constraints=["host == nowhere"])  # alice's quota, all of it
    h.submit("extra", tasks=2, opportunistic=True)
    h.schedule()
    assert all(h.task("extra", i).state is R for i in (0, 1))
    h.submit("be", user="carol", tasks=1, priority=0)  # best-effort preempts no regular task
    h.schedule()
    assert h.task("be", user="carol").state is R
    assert sorted(h.task("extra", i).state.value for i in (0, 1)) == ["pending", "running"]
    same_state_rebuilt(h)


# A replayed log and a checkpoint rebuild the live state under random churn with opportunistic tasks
# (quota small enough that most jobs run some; the commands of tests/master/test_replay.py).
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from tests.master import test_replay as replay  # noqa: E402

opp_spec = st.fixed_dictionaries({
    "name": st.sampled_from(replay.JOBS), "user": st.just("alice"), "tasks": st.integers(1, 4),
    "priority": st.sampled_from([0, 2, 5, 5]), "opportunistic": st.sampled_from([True, True, 2, 3]),
    "resources": st.fixed_dictionaries({"cpu": st.sampled_from(["500m", "1", "2"]), "memory": st.just("1Gi")}),
})
finished = st.builds(lambda i: ("report", i, "finished"), st.integers(0, 50))
opp_commands = st.one_of(
    replay.register, replay.register, replay.schedule, replay.schedule, replay.schedule, finished, finished,
    st.builds(lambda s: ("submit", s, None), opp_spec), st.builds(lambda s: ("submit", s, None), opp_spec),
    st.builds(lambda s, n: ("update", s, n), opp_spec, st.integers(1, 3)),
    st.builds(lambda j: ("kill", f"{j}.alice"), st.sampled_from(replay.JOBS)),
    st.builds(lambda i, how: ("report", i, how), st.integers(0, 50), st.sampled_from(["finished", "failed"])),
    st.builds(lambda s: ("tick", s), st.sampled_from([0.0, 5.0])), st.just(("checkpoint",)),
    st.builds(lambda subs: ("interleaved", subs), st.lists(st.one_of(
        st.builds(lambda s: ("submit", s, None), opp_spec),
        st.builds(lambda i: ("report", i, "finished"), st.integers(0, 50))), max_size=3)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(opp_commands, min_size=5, max_size=50))
def test_a_replayed_log_with_opportunistic_tasks_rebuilds_the_same_state(cmds):
    h = Harness(quotas=Quotas.parse({"*": {"batch": {"cpu": 3, "memory": "64Gi"}}}), lost_after_s=15.0)
    for cmd in cmds:
        replay.run(h, cmd)  # validate mode: quota charges and the opportunistic list checked each command
    same_state_rebuilt(h)
    from_log = CellState(h.state.cell)
    for event in h.store.read_since(0):
        from_log.apply(event)
    assert from_log.to_dict() == h.state.to_dict()
    assert list(from_log.opportunistic) == list(h.state.opportunistic)
