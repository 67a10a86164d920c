"""Scheduler profiles (Omega): which profile owns a job, several schedulers on one cell committing
optimistically per machine, their counts and backoff, and — under any interleaving of their
commits — no machine over-committed and no task placed twice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.master.commands import Kill, Submit
from corral.master.errors import AdmissionError
from corral.master.profiles import Backoff, ProfileError, Profiles, SchedulerProfile
from corral.model.job import TaskState
from corral.model.spec import JobSpec

from tests.master.helpers import Harness, spec

P, R = TaskState.PENDING, TaskState.RUNNING

PROFILES = Profiles([SchedulerProfile("service", "hybrid", bands=("production", "monitoring")),
                     SchedulerProfile("ls", None, appclasses=("latency-sensitive",)),
                     SchedulerProfile("fast", "best-fit")])

OWNERS = [
    ("a production job goes to the profile claiming its band", dict(priority=9), "service"),
    ("a batch-band latency-sensitive job goes to the profile claiming its appclass",
     dict(priority=2, appclass="latency-sensitive"), "ls"),
    ("the spec's scheduler wins over a band", dict(priority=9, scheduler="fast"), "fast"),
    ("a job no profile claims goes to default", dict(priority=2), "default"),
    ("profiles are tried in order: the band's profile comes before the appclass's",
     dict(priority=10, appclass="latency-sensitive"), "service"),
]


@pytest.mark.parametrize("case, fields, owner", OWNERS, ids=[c[0] for c in OWNERS])
def test_each_job_has_one_owner(case, fields, owner):
    assert PROFILES.owner(JobSpec.model_validate(spec("j", **fields))) == owner


BAD = [
    ("not a list", {"name": "a"}, "schedulers", "expected a list"),
    ("an unknown key", [{"name": "a", "colour": 1}], "schedulers[0].colour", "unknown key"),
    ("a bad name", [{"name": "A B"}], "schedulers[0].name", "lowercase"),
    ("a name twice", [{"name": "a"}, {"name": "a"}], "schedulers[1].name", "twice"),
    ("an unknown band", [{"name": "a", "bands": ["gold"]}], "schedulers[0].bands", "production"),
    ("an unknown policy", [{"name": "a", "policy": "nope"}], "schedulers[0].policy", "nope"),
    ("external not a boolean", [{"name": "a", "external": "yes"}], "schedulers[0].external", "true or false"),
]


@pytest.mark.parametrize("case, data, field, phrase", BAD, ids=[c[0] for c in BAD])
def test_a_bad_profile_is_refused_naming_its_field(case, data, field, phrase):
    with pytest.raises(ProfileError) as err:
        Profiles.parse(data)
    assert err.value.field == field and phrase in err.value.message


def test_the_default_profile_always_exists_and_alone_is_todays_single_scheduler():
    assert Profiles().single and [p.name for p in Profiles()] == ["default"]
    assert not Profiles.parse([{"name": "batch"}]).single
    assert not Profiles.parse([{"name": "default", "external": True}]).single


def test_a_spec_naming_an_unknown_scheduler_is_refused_by_field():
    h = Harness(profiles=PROFILES)
    with pytest.raises(AdmissionError) as err:
        h.submit("web", scheduler="nosuch")
    assert err.value.status == 400
    assert "no scheduler profile named 'nosuch'" in dict(err.value.errors)["scheduler"]
    assert "web.alice" not in h.state.jobs


def test_backoff_doubles_while_rounds_conflict_up_to_its_cap_and_clears_on_a_clean_round():
    b = Backoff(base_s=0.1, cap_s=0.5)
    assert [b.record(True, 0.0) for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert b.remaining(0.2) == pytest.approx(0.3)
    assert b.record(False, 1.0) == 0.0 and b.remaining(1.0) == 0.0 and b.streak == 0


# ---- two schedulers, one machine ------------------------------------------------------------------


class _Interleaved:
    """A scheduler that, once it has made its plan and before handing it back, lets ``meanwhile`` run
    (another scheduler's whole round, planned on the same state and committed first)."""

    def __init__(self, inner, meanwhile):
        self.inner, self.meanwhile, self.config = inner, meanwhile, inner.config
        self.calls = 0

    def schedule(self, view, pending):
        plan = self.inner.schedule(view, pending)
        self.calls += 1
        if self.calls == 1:
            self.meanwhile()
        return plan


def test_two_schedulers_planning_on_the_same_snapshot_for_one_machine_one_wins_the_other_places_elsewhere():
    profiles = Profiles([SchedulerProfile("default", "best-fit"), SchedulerProfile("fast", "best-fit")])
    h = Harness(profiles=profiles)
    h.machine("small", cpu="4")  # best fit for both
    h.machine("big", cpu="8")
    h.submit("slow-job", cpu="3")
    h.submit("fast-job", cpu="3", scheduler="fast")
    runners = h.core.profiles
    default_scheduler = runners.scheduler("default")
    assert runners.keep("default")(h.state.jobs["slow-job.alice"])
    assert not runners.keep("default")(h.state.jobs["fast-job.alice"])
    fast_rounds = []
    slow = _Interleaved(default_scheduler, lambda: fast_rounds.append(h.core.schedule(profile="fast")))
    out = h.core.schedule(scheduler=slow, profile="default")

    assert h.task("fast-job").machine == "small"  # committed first: it won the machine
    assert h.task("slow-job").state is R and h.task("slow-job").machine == "big"  # retried, placed elsewhere
    assert slow.calls == 2 and out.reply["rounds"] == 2 and out.reply["stale"] == []
    stats = {p["name"]: p for p in runners.describe()}
    assert (stats["fast"]["placements"], stats["fast"]["conflicts"], stats["fast"]["retries"]) == (1, 0, 0)
    assert (stats["default"]["placements"], stats["default"]["conflicts"], stats["default"]["retries"]) == (1, 1, 1)
    assert stats["default"]["backoff"]["streak"] == 1 and stats["fast"]["backoff"]["streak"] == 0
    assert stats["default"]["backoff"]["remaining_s"] > 0


def test_a_placement_on_a_machine_another_scheduler_changed_without_taking_its_room_still_commits():
    """Per-machine commit: the machine changed since the snapshot, but the task still fits there."""
    h = Harness(profiles=Profiles([SchedulerProfile("fast")]))
    h.machine("m0", cpu="8")
    h.submit("a", cpu="2")
    h.submit("b", cpu="2", scheduler="fast")
    slow = _Interleaved(h.core.profiles.scheduler("default"), lambda: h.core.schedule(profile="fast"))
    out = h.core.schedule(scheduler=slow, profile="default")
    assert out.reply["rounds"] == 1 and out.reply["stale"] == []
    assert h.task("a").machine == h.task("b").machine == "m0"


# ---- any interleaving ------------------------------------------------------------------------------

MANY = Profiles([SchedulerProfile("p1", "best-fit"), SchedulerProfile("p2", "worst-fit"),
                 SchedulerProfile("p3", "hybrid", bands=("production",))])


def _check(h: Harness) -> None:
    """No machine holds more than its capacity; no task is running twice or anywhere but its machine."""
    view = h.state.view
    held = np.zeros_like(view.capacity)
    seen: set[str] = set()
    for task in h.state.tasks.values():
        if task.state is R:
            assert task.name not in seen
            seen.add(task.name)
            held[view.index[task.machine]] += task.request.vector
            assert view.names[view.where[task.name]] == task.machine
        else:
            assert task.name not in view.where
    assert (held <= view.capacity).all(), "a machine is over-committed"
    for job in h.state.jobs.values():  # a gang is never left partly placed by a commit
        size = job.spec.gang_size
        running = sum(t.state is R for t in h.state.tasks_of(job.id))
        assert size <= 1 or running == 0 or running >= size


JOBS = st.tuples(st.integers(1, 4), st.sampled_from(["1", "2", "3"]), st.sampled_from([None, "p1", "p2"]),
                 st.sampled_from([2, 9]), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=st.lists(JOBS, min_size=2, max_size=8), order=st.randoms(use_true_random=False),
       kills=st.lists(st.integers(0, 7), max_size=3))
def test_several_schedulers_commits_interleaved_at_random_never_over_commit_or_place_twice(jobs, order, kills):
    h = Harness(profiles=MANY)
    for i in range(3):
        h.machine(f"m{i}", cpu="4", memory="8Gi")
    for i, (tasks, cpu, scheduler, priority, gang) in enumerate(jobs):
        h.submit(f"j{i}", tasks=tasks, cpu=cpu, priority=priority, gang=gang and tasks > 1,
                 **({"scheduler": scheduler} if scheduler else {}))
    runners = h.core.profiles
    names = [p.name for p in MANY]
    for _ in range(3):
        # every scheduler plans on its own snapshot of the same state; the commits then come in a
        # random order, with a kill or a new job now and then between them
        plans = []
        for name in names:
            rnd = h.core.snapshot(keep=runners.keep(name))
            plan = runners.scheduler(name).schedule(rnd.view, rnd.pending)
            if order.random() < 0.5:  # as an external scheduler's plan: no machine versions to trust
                rnd.view.release()
                rnd = replace(rnd, view=None, versions=None, lineage=None)
            plans.append((name, rnd, plan))
        order.shuffle(plans)
        for step, (name, rnd, plan) in enumerate(plans):
            if kills and order.random() < 0.3:
                job = f"j{kills.pop() % len(jobs)}.alice"
                if not h.state.jobs[job].state.ended:
                    h.run(Kill(job))
            out = h.commit(rnd, plan)
            runners.record(name, out.reply["placed"], len(out.reply["stale"]), 0, out.reply["preempted"])
            _check(h)
    # every running task was placed by one of the schedulers' commits, and counted there
    placements = sum(p["placements"] for p in runners.describe())
    assert placements >= sum(t.state is R for t in h.state.tasks.values())


def _placements(h: Harness) -> list[tuple[str, str]]:
    return [(e["task"], e["machine"]) for e in h.store.read_since(0) if e["type"] == "task_scheduled"]


def test_a_profile_owning_every_job_places_them_as_the_single_default_scheduler_does():
    one = Harness()
    split = Harness(profiles=Profiles([SchedulerProfile("all", bands=("best-effort", "batch", "production",
                                                                      "monitoring"))]))
    for h in (one, split):
        for i in range(4):
            h.machine(f"m{i}", cpu=str(2 + i))
        for i, (cpu, priority) in enumerate([("1", 2), ("2", 9), ("500m", 0), ("3", 2), ("1", 11)]):
            h.submit(f"j{i}", tasks=2, cpu=cpu, priority=priority)
    one.schedule()
    for profile in ("all", "default"):
        out = split.core.schedule(profile=profile)
        split.store.append([e.to_dict() for e in out.events])
    assert _placements(split) == _placements(one) and len(_placements(one)) > 4
    rows = {p["name"]: p for p in split.core.profiles.describe()}
    assert rows["all"]["placements"] == len(_placements(one)) and rows["default"]["placements"] == 0


def test_a_dry_run_plans_a_job_with_its_own_profile_and_accepts_its_scheduler_field():
    from corral.master import dry_run

    h = Harness(profiles=Profiles([SchedulerProfile("packer", "best-fit")]))
    h.machine("small", cpu="2")
    h.machine("big", cpu="16")
    answer = dry_run.dry_submit(dry_run.scratch_of(h.core), spec("probe", cpu="2", scheduler="packer"))
    assert [p["machine"] for p in answer["placed"]] == ["small"]  # best-fit, not the cell's hybrid
    assert "probe.alice" not in h.state.jobs


def test_a_task_parked_by_a_plan_older_than_another_schedulers_wake_check_still_wakes_for_the_room_freed():
    h = Harness(profiles=Profiles([SchedulerProfile("fast")]))
    h.machine("m0", cpu="4")
    h.submit("hog", cpu="4")
    h.schedule()
    h.submit("small", cpu="2", scheduler="fast")
    runners = h.core.profiles
    rnd = h.core.snapshot(keep=runners.keep("fast"))
    plan = runners.scheduler("fast").schedule(rnd.view, rnd.pending)
    assert "0.small.alice.local" in plan.unplaced
    h.run(Kill("hog.alice"))  # room freed after the plan was made ...
    h.core.schedule(profile="default")  # ... and another scheduler's snapshot ran the wake check
    h.commit(rnd, plan)  # the stale "no room" parks the task
    h.core.schedule(profile="fast")
    assert h.task("small").state is R


def test_the_masters_thread_for_a_profile_backing_off_waits_its_pause_out_before_its_next_round():
    import time

    from corral.master.commands import RegisterMachine
    from corral.master.server import build_master

    master = build_master("memory://", schedule_interval_s=0.02, profiles=Profiles([SchedulerProfile("fast")]))
    core = master.core
    master.execute(RegisterMachine("m0", {"cpu": "4", "memory": "8Gi"}, address="http://m0"))
    backoff = core.profiles.stats["fast"].backoff
    backoff.streak, backoff.until = 3, core.clock.now() + 1.0  # as after three conflicting rounds
    master.start()
    try:
        master.execute(Submit(spec("quick", cpu="1")))
        master.execute(Submit(spec("later", cpu="1", scheduler="fast")))
        time.sleep(0.5)
        with master.lock:
            assert core.state.tasks["0.quick.alice.local"].state is R  # the default profile is not held up
            assert core.state.tasks["0.later.alice.local"].state is P  # its profile is still backing off
        deadline = time.monotonic() + 5.0
        while core.state.tasks["0.later.alice.local"].state is not R and time.monotonic() < deadline:
            time.sleep(0.05)
        assert core.state.tasks["0.later.alice.local"].state is R
        assert backoff.streak == 0  # a clean round cleared it
    finally:
        master.stop(checkpoint=False)
