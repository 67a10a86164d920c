"""The master core, driven by commands on a manual clock, invariants checked after every step."""

from __future__ import annotations

import pytest

from corral.model.job import JobState, TaskState
from corral.master.errors import AdmissionError
from corral.master.quota import Quotas
from corral.master.commands import AgentReport, Kill, KillTask, RegisterMachine, StartTask, Submit, Tick, Update
from corral.master.core import MasterCore
from corral.master.state import CellState
from corral.sched.scheduler import Scheduler, SchedulerConfig

from tests.master.helpers import Harness, spec

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD


@pytest.fixture
def h() -> Harness:
    return Harness()


def replayed(h: Harness) -> CellState:
    return MasterCore.rebuild(h.store)


def test_a_submitted_job_gets_stable_task_names_and_runs_once_scheduled(h):
    h.machine("m1")
    out = h.submit("web", tasks=2)
    assert out.reply["state"] == "pending" and [e.TYPE for e in out.events] == ["job_submitted"]
    assert h.task("web", 1).name == "1.web.alice.local" and h.task("web", 1).state is P
    out = h.schedule()
    assert out.reply["placed"] == 2
    starts = [e for e in out.effects if isinstance(e, StartTask)]
    assert {s.task for s in starts} == {"0.web.alice.local", "1.web.alice.local"}
    assert starts[0].address == "http://m1" and starts[0].launch["generation"] == 1
    assert h.state.jobs["web.alice"].state is JobState.RUNNING
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_duplicate_request_id_returns_the_first_job_without_new_events(h):
    first = h.run(Submit(spec("web"), request_id="r-1"))
    again = h.run(Submit(spec("web", tasks=5), request_id="r-1"))
    assert again.events == [] and again.reply["duplicate"] and again.reply["job"] == first.reply["job"]
    assert again.reply["tasks"] == 1


def test_a_second_live_job_of_the_same_name_is_a_conflict_and_changes_nothing(h):
    h.submit("web")
    seq = h.state.seq
    with pytest.raises(AdmissionError) as err:
        h.submit("web")
    assert err.value.status == 409 and err.value.errors[0][0] == "name"
    assert h.state.seq == seq


def test_a_bad_spec_is_refused_naming_the_field(h):
    with pytest.raises(AdmissionError) as err:
        h.run(Submit(spec("web", memory="12 parsecs")))
    assert err.value.status == 400
    assert err.value.errors[0][0] == "resources.memory"
    assert h.state.seq == 0


QUOTA = Quotas.parse({"alice": {"batch": {"cpu": 4, "memory": "8Gi"}}, "*": {"batch": {"cpu": 1, "memory": "1Gi"}}})


def test_a_job_over_its_users_band_quota_is_rejected_with_the_numbers():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=3)  # 3 cpus of 4
    with pytest.raises(AdmissionError) as err:
        h.submit("b", tasks=2)
    assert err.value.status == 422
    field, message = err.value.errors[0]
    assert field == "quota.batch.cpu"
    assert "would use 5 cpu" in message and "in use 3" in message and "this job 2" in message and "quota of 4" in message


def test_quota_is_given_back_when_a_job_dies():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=4)
    h.run(Kill("a.alice"))
    h.submit("b", tasks=4)


def test_priority_zero_is_never_limited_and_unlisted_bands_have_no_quota():
    h = Harness(quotas=QUOTA)
    h.submit("free", tasks=100, priority=0)
    with pytest.raises(AdmissionError, match="quota.production.cpu"):
        h.submit("prod", priority=9)
    with pytest.raises(AdmissionError, match="user carol would use 2 cpu"):
        h.submit("c", user="carol", cpu="2")


def test_a_quota_raise_by_update_is_checked_too():
    h = Harness(quotas=QUOTA)
    h.submit("a", tasks=2)
    with pytest.raises(AdmissionError, match="quota.batch.cpu"):
        h.run(Update(spec("a", tasks=5)))
    h.run(Update(spec("a", tasks=4)))


def test_an_ordered_job_waits_for_its_predecessor_to_finish(h):
    h.machine("m1")
    h.submit("prep")
    h.submit("main", after="prep")
    h.schedule()
    assert h.task("main").state is P and "waiting for job prep to succeed" in h.task("main").reason
    prep = h.task("prep")
    h.run(AgentReport("m1", [{"task_id": prep.name, "generation": prep.generation, "state": "finished", "exit_code": 0}]))
    assert h.state.jobs["prep.alice"].state is JobState.SUCCEEDED
    h.schedule()
    assert h.task("main").state is R


def test_an_ordered_job_is_rejected_when_its_predecessor_is_killed(h):
    h.submit("prep")
    h.submit("main", after="prep")
    h.run(Kill("prep.alice"))
    assert h.task("main").state is D
    assert h.state.jobs["main.alice"].history[-1].via == "reject"
    with pytest.raises(AdmissionError) as err:
        h.submit("again", after="prep")
    assert err.value.errors[0][0] == "after"
    with pytest.raises(AdmissionError, match="there is no job nosuch"):
        h.submit("x", after="nosuch")


def test_killing_a_running_job_kills_its_tasks_on_their_machines(h):
    h.machine("m1")
    h.submit("web", tasks=2)
    h.schedule()
    out = h.run(Kill("web.alice"))
    assert sorted(e.task for e in out.effects if isinstance(e, KillTask)) == ["0.web.alice.local", "1.web.alice.local"]
    assert h.state.jobs["web.alice"].state is JobState.KILLED
    assert all(t.state is D for t in h.state.tasks_of("web.alice"))
    assert h.state.view.free[0][0] == 4000
    assert h.run(Kill("web.alice")).events == []  # killing a killed job again changes nothing
    with pytest.raises(AdmissionError) as err:
        h.run(Kill("nosuch.alice"))
    assert err.value.status == 404


def test_a_priority_change_happens_in_place_without_restarting_tasks(h):
    h.machine("m1")
    h.submit("web", tasks=2)
    h.schedule()
    before = {t.name: (t.machine, t.generation) for t in h.state.tasks_of("web.alice")}
    out = h.run(Update(spec("web", tasks=2, priority=9)))
    assert out.reply["restart"] is False and out.effects == []
    assert {t.name: (t.machine, t.generation) for t in h.state.tasks_of("web.alice")} == before
    assert h.state.view.used[9].sum() > 0 and h.state.view.used[2].sum() == 0
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_resource_change_rolls_through_the_job_disrupting_at_most_max_unavailable(h):
    h.machine("m1", cpu="16", memory="64Gi")
    h.submit("web", tasks=4)
    h.schedule()
    h.run(Update(spec("web", tasks=4, memory="2Gi"), max_unavailable=2))
    seen_down = []
    for _ in range(6):
        seen_down.append(sum(1 for t in h.state.tasks_of("web.alice") if t.state is P))
        h.schedule()
        h.run(Tick())
        seen_down.append(sum(1 for t in h.state.tasks_of("web.alice") if t.state is P))
    assert max(seen_down) == 2
    tasks = h.state.tasks_of("web.alice")
    assert all(t.state is R and t.version == h.state.jobs["web.alice"].version for t in tasks)
    assert all(t.generation == 2 for t in tasks)
    assert h.state.jobs["web.alice"].old_specs == {}  # no task runs the old spec any more
    assert replayed(h).to_dict() == h.state.to_dict()


def test_scaling_a_job_down_kills_the_highest_indexes_and_up_adds_new_tasks(h):
    h.machine("m1")
    h.submit("web", tasks=3)
    h.schedule()
    out = h.run(Update(spec("web", tasks=1)))
    assert sorted(e.task for e in out.effects) == ["1.web.alice.local", "2.web.alice.local"]
    assert [t.state for t in h.state.tasks_of("web.alice")] == [R, D, D]
    h.run(Update(spec("web", tasks=2)))
    assert [t.state for t in h.state.tasks_of("web.alice")] == [R, P, D]
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_production_job_preempts_batch_work_which_goes_back_to_pending_with_the_reason(h):
    h.machine("m1", cpu="2")
    h.submit("batch", tasks=2, priority=2)
    h.schedule()
    h.submit("prod", priority=9, cpu="2")
    out = h.schedule()
    assert out.reply["preempted"] == 2
    assert h.task("prod").state is R
    victim = h.task("batch")
    assert victim.state is P and "preempted on m1 by 0.prod.alice.local" in victim.reason
    assert sorted(e.task for e in out.effects if isinstance(e, KillTask)) == ["0.batch.alice.local", "1.batch.alice.local"]
    assert replayed(h).to_dict() == h.state.to_dict()


def test_every_task_left_waiting_has_a_pending_reason(h):
    h.machine("m1", cpu="2")
    h.submit("big", cpu="3")
    h.submit("fits")
    h.schedule()
    assert h.task("fits").state is R
    assert h.task("big").reason.startswith("0/1 machines are available: 1 insufficient cpu")
    record = h.task("big").explanation
    assert {**record["filtered"], **record.get("exhausted", {})} == {"insufficient cpu": 1}


def test_with_no_machines_the_reason_says_so(h):
    h.submit("web")
    h.schedule()
    assert "no machines" in h.task("web").reason


def test_a_plan_that_went_stale_is_partly_committed_and_the_rest_is_retried():
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="3")
    rnd = h.core.snapshot()
    plan = Scheduler(SchedulerConfig()).schedule(rnd.view, rnd.pending)
    assert plan.placed_on() == {"0.a.alice.local": "m1"}
    # Meanwhile another job takes the machine.
    h.submit("b", cpu="3", priority=5)
    h.schedule()
    assert h.task("b").state is R
    out = h.commit(rnd, plan)
    assert out.reply["placed"] == 0 and out.reply["stale"] == ["0.a.alice.local"]
    assert h.task("a").state is P and "went stale" in h.task("a").reason
    assert "does not fit on m1" in h.task("a").reason
    # The next round plans it afresh and explains why it waits.
    h.schedule()
    assert h.task("a").reason.startswith("0/1 machines are available")


def test_a_placement_for_a_task_killed_meanwhile_is_dropped():
    h = Harness()
    h.machine("m1")
    h.submit("a", tasks=2)
    rnd = h.core.snapshot()
    plan = h.core.scheduler.schedule(rnd.view, rnd.pending)
    h.run(Kill("a.alice"))
    out = h.commit(rnd, plan)
    assert out.reply["placed"] == 0 and len(out.reply["stale"]) == 2 and out.events == []
    assert h.state.view.task_count() == 0


def test_scheduling_retries_stale_placements_a_bounded_number_of_times():
    class AlwaysStale(Scheduler):
        calls = 0

        def schedule(self, view, pending):
            AlwaysStale.calls += 1
            plan = super().schedule(view, pending)
            h.state.tasks[pending[0].id].history.append(h.state.tasks[pending[0].id].history[-1])  # touch
            return plan

    h = Harness(retries=2, scheduler=AlwaysStale(SchedulerConfig()))
    h.core.validate = False
    h.machine("m1")
    h.submit("a")
    out = h.core.schedule()
    assert AlwaysStale.calls == 3 and out.reply["rounds"] == 3 and out.reply["stale"] == ["0.a.alice.local"]


def test_agent_reports_end_tasks_and_unknown_tasks_are_killed(h):
    h.machine("m1", cpu="8")
    h.submit("a", tasks=3)
    h.schedule()
    h.machine("m2", cpu="1")  # registered after the placement, so all three run on m1: a failed task goes there
    t0, t1, t2 = h.state.tasks_of("a.alice")
    out = h.run(AgentReport("m1", [
        {"task_id": t0.name, "generation": t0.generation, "state": "finished", "exit_code": 0},
        {"task_id": t1.name, "generation": t1.generation, "state": "failed", "exit_code": 3, "failures": 3},
        {"task_id": t2.name, "generation": t2.generation, "state": "killed", "last_error": "evicted under memory pressure"},
        {"task_id": "0.ghost.bob.local", "generation": 1, "state": "running"},
    ]))
    assert (t0.state, t1.state, t2.state) == (D, P, P)
    assert t1.history[-1].via == "failover" and t2.history[-1].note == "evicted under memory pressure"
    assert [e.task for e in out.effects] == ["0.ghost.bob.local"]
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_machine_that_stops_answering_is_lost_and_its_tasks_are_rescheduled():
    h = Harness(lost_after_s=10.0)
    h.machine("m1")
    h.machine("m2")
    h.submit("a", tasks=2)
    h.schedule()
    h.clock.advance(5)
    h.run(AgentReport("m2", []))
    h.clock.advance(6)
    h.run(Tick())
    assert h.state.machines["m1"].state == "lost"
    lost = [t for t in h.state.tasks_of("a.alice") if t.history[-1].via == "lost"]
    h.schedule()
    assert all(t.state is R and t.machine == "m2" for t in h.state.tasks_of("a.alice"))
    assert lost or all(t.machine == "m2" for t in h.state.tasks_of("a.alice"))
    assert replayed(h).to_dict() == h.state.to_dict()


def test_re_registering_a_machine_is_idempotent_and_a_shrunk_machine_evicts_what_no_longer_fits(h):
    h.machine("m1", cpu="4")
    assert h.machine("m1", cpu="4").events == []
    h.submit("a", tasks=4)
    h.schedule()
    out = h.run(RegisterMachine("m1", {"cpu": "2", "memory": "8Gi"}, address="http://m1"))
    assert len(out.events) == 1
    assert sorted(t.state.value for t in h.state.tasks_of("a.alice")) == ["pending", "pending", "running", "running"]
    assert replayed(h).to_dict() == h.state.to_dict()


def test_bad_machine_registrations_name_the_field(h):
    with pytest.raises(AdmissionError) as err:
        h.run(RegisterMachine("M 1", {"cpu": "lots", "memory": "8Gi"}))
    assert {f for f, _ in err.value.errors} == {"name", "capacity.cpu", "capacity"}


def test_a_job_can_be_submitted_again_after_it_died(h):
    h.machine("m1")
    h.submit("a")
    h.run(Kill("a.alice"))
    h.submit("a", tasks=2)
    h.schedule()
    assert [t.state for t in h.state.tasks_of("a.alice")] == [R, R]
    assert [t.via for t in h.state.jobs["a.alice"].history] == ["submit", "kill", "submit", "schedule"]
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_checkpoint_plus_the_log_after_it_rebuilds_the_state(h):
    h.machine("m1")
    h.submit("a", tasks=2)
    h.schedule()
    h.store.write_checkpoint(h.state.seq, h.state.to_dict())
    h.submit("b")
    h.run(Kill("a.alice"))
    h.schedule()
    rebuilt = replayed(h)
    assert rebuilt.to_dict() == h.state.to_dict()
    rebuilt.validate()


def test_gpu_quota_counts_whole_and_shared_gpus():
    h = Harness(quotas=Quotas.parse({"bob": {"batch": {"cpu": 100, "memory": "1Ti", "gpu": 2.5}}}))
    h.run(Submit({**spec("train", user="bob", tasks=2), "resources": {"cpu": 1, "memory": "1Gi", "gpu": 1}}))
    h.run(Submit({**spec("share", user="bob"), "resources": {"cpu": 1, "memory": "1Gi", "gpu": 1, "gpu_milli": 500}}))
    with pytest.raises(AdmissionError) as err:
        h.run(Submit({**spec("more", user="bob"), "resources": {"cpu": 1, "memory": "1Gi", "gpu": 1}}))
    assert err.value.errors[0][0] == "quota.batch.gpu" and "would use 3.5 gpu" in err.value.errors[0][1]


def test_a_plan_dropped_as_stale_does_not_poison_the_schedulers_cache():
    # The plan fills m1 on its snapshot; meanwhile the live m1 empties. The snapshot and the live
    # view must never share a version number for different states, or the next round would trust
    # scores cached on the snapshot ("no room") for the emptied machine.
    h = Harness()
    h.machine("m1", cpu="4")
    h.submit("a", cpu="2")
    h.schedule()
    h.submit("b", cpu="1")
    h.submit("c", cpu="2", priority=1)
    h.submit("d", cpu="1")
    rnd = h.core.snapshot()
    plan = h.core.scheduler.schedule(rnd.view, rnd.pending)
    assert set(plan.placed_on()) == {"0.b.alice.local", "0.d.alice.local"} and "0.c.alice.local" in plan.unplaced
    for job in ("a", "b", "d"):
        h.run(Kill(f"{job}.alice"))
    assert h.commit(rnd, plan).reply["placed"] == 0
    h.schedule()
    assert h.task("c").state is R


def test_scaling_a_job_down_to_tasks_that_already_ended_ends_the_job(h):
    h.machine("m1")
    h.submit("c", tasks=2)
    h.schedule()
    t0 = h.task("c")
    h.run(AgentReport("m1", [{"task_id": t0.name, "generation": t0.generation, "state": "finished", "exit_code": 0}]))
    h.run(Update(spec("c", tasks=1)))
    assert h.state.jobs["c.alice"].state is JobState.SUCCEEDED
    assert h.state.jobs["c.alice"].history[-1].via == "update"
    assert replayed(h).to_dict() == h.state.to_dict()


def test_a_state_rebuilt_from_a_checkpoint_keeps_the_live_iteration_order():
    h = Harness(lost_after_s=15.0)
    h.machine("m1")
    h.submit("a", user="bob", priority=0)
    h.submit("a", user="alice", priority=0)
    h.schedule()
    h.store.write_checkpoint(h.state.seq, h.state.to_dict())
    h.clock.advance(20)
    h.run(Tick())  # m1 is lost: its tasks go back to pending in the state's task order
    rebuilt = replayed(h)
    assert list(rebuilt.pending) == list(h.state.pending) == ["0.a.bob.local", "0.a.alice.local"]
    assert list(rebuilt.tasks) == list(h.state.tasks)


def test_a_priority_change_during_a_rolling_update_leaves_tasks_of_the_older_spec_alone(h):
    h.machine("m1", cpu="4")
    h.submit("web", tasks=3, cpu="1")
    h.schedule()
    h.run(Update(spec("web", tasks=3, cpu="2"), max_unavailable=1))  # rolling: one task at a time
    old = [t for t in h.state.tasks_of("web.alice") if t.state is R]
    assert len(old) == 2 and all(t.version == 1 for t in old)
    h.run(Update(spec("web", tasks=3, cpu="2", priority=5)))  # in place: must not resize the old tasks
    assert all(t.version == 1 and t.request.resources.cpu == 1000 for t in old)
    for _ in range(8):
        h.schedule()
        h.run(Tick())
    assert replayed(h).to_dict() == h.state.to_dict()
