"""The master's estimators fed from its events (corral.master.estimates): hand-computed runtimes."""

from __future__ import annotations

from corral.master.commands import AgentReport
from corral.master.core import MasterCore

from tests.master.helpers import Harness


def report(h: Harness, job: str, index: int, state: str, **more) -> None:
    t = h.task(job, index)
    h.run(AgentReport(t.machine, [{"task_id": t.name, "generation": t.generation, "state": state, **more}]))


def run_job(h: Harness, job: str, durations: list[float], **fields) -> None:
    """Submit ``job`` with one task per duration, place them all at once, finish each after its duration."""
    h.submit(job, tasks=len(durations), cpu="0.5", memory="256Mi", **fields)
    h.schedule()
    t0 = h.clock.now()
    for i in sorted(range(len(durations)), key=lambda i: durations[i]):
        h.clock.advance(t0 + durations[i] - h.clock.now())
        report(h, job, i, "finished", exit_code=0)


def test_finished_tasks_give_the_job_its_mean_runtime_and_a_failure_counts_against_it():
    h = Harness()
    h.machine("m1", cpu="8")
    run_job(h, "b", [10.0, 20.0, 30.0])
    est = h.state.estimates
    got = est.runtime("b.alice")
    assert got.source == "tasks" and got.samples == 3 and abs(got.mean_s - 20.0) < 1e-9
    assert est.failures.counts("b.alice") == (0, 3)  # (failed, seen)
    h.submit("f", cpu="0.5", memory="256Mi")
    h.schedule()
    report(h, "f", 0, "failed", exit_code=1, failures=99)
    assert est.failures.counts("f.alice")[0] == 1


def test_the_spec_is_the_prior_until_enough_tasks_finished_then_history_of_the_same_name_and_user():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", cpu="0.5", memory="256Mi", expected_runtime=45)
    assert h.state.estimates.runtime("b.alice").source == "spec"
    assert h.state.estimates.runtime("b.alice").mean_s == 45.0


def test_an_earlier_job_of_the_same_name_and_user_is_the_history_prior():
    h = Harness()
    h.machine("m1", cpu="8")
    run_job(h, "b", [4.0, 8.0])  # two samples: below min_samples (3), the job's own estimate is unknown
    assert h.state.estimates.runtime("b.alice").source == "none"
    h.submit("b", cpu="0.5", memory="256Mi")  # the same name and user again, after the first finished
    got = h.state.estimates.runtime("b.alice")
    assert got.source == "history" and abs(got.mean_s - 6.0) < 1e-9
    assert h.state.estimates.runtime("b.bob").source == "none"


def test_the_remaining_time_of_a_running_task_counts_down_from_its_estimate():
    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", cpu="0.5", memory="256Mi", expected_runtime=100)
    h.schedule()
    name = h.task("b").name
    h.clock.advance(30)
    assert h.state.estimates.remaining_s(h.state, name, h.clock.now()) == 70.0
    h.clock.advance(100)  # late: a tenth of the estimate more
    assert h.state.estimates.remaining_s(h.state, name, h.clock.now()) == 10.0


def test_a_rebuild_from_the_log_gives_the_same_estimates():
    h = Harness()
    h.machine("m1", cpu="8")
    run_job(h, "b", [10.0, 20.0, 30.0, 60.0])
    h.submit("c", cpu="0.5", memory="256Mi", expected_runtime=7)
    h.schedule()
    rebuilt = MasterCore.rebuild(h.store).estimates
    live = h.state.estimates
    for job in ("b.alice", "c.alice"):
        assert rebuilt.runtime(job) == live.runtime(job)
        assert rebuilt.failures.counts(job) == live.failures.counts(job)
    assert rebuilt.started == live.started and len(live.started) == 1


def test_the_completion_estimate_is_the_wait_plus_the_class_runtime_over_the_success_odds():
    from corral.master.estimates import CompletionEstimate

    h = Harness()
    h.machine("m1", cpu="8")
    run_job(h, "b", [10.0, 20.0, 30.0])  # the class of b's request: mean 20 s
    request = h.state.jobs["b.alice"].request
    estimate = CompletionEstimate(h.state, lambda machine, req: {"m1": 12.0}[machine])
    p = h.state.estimates.failures.prior_p  # a request names no job: the failure prior
    assert abs(estimate(request, "m1") - (12.0 + 20.0 / (1 - p))) < 1e-9
    other = h.state.jobs["b.alice"].request.__class__(resources=request.resources, priority=9)
    assert estimate(other, "m1") == float("inf")  # a class nothing finished of


def test_the_core_hands_its_estimate_to_a_completion_time_policy():
    from corral.master.estimates import CompletionEstimate
    from corral.sched.scheduler import Scheduler, SchedulerConfig

    h = Harness(scheduler=Scheduler(SchedulerConfig(policy="completion-time=1")))
    (scorer, weight), = h.core.scheduler.policy.scorers
    assert scorer.name == "completion-time" and isinstance(scorer.completion, CompletionEstimate)


def test_a_state_restored_from_a_checkpoint_takes_running_starts_from_the_tasks_history():
    from corral.master.state import CellState

    h = Harness()
    h.machine("m1", cpu="8")
    h.submit("b", tasks=3, cpu="0.5", memory="256Mi", expected_runtime=100)
    h.schedule()
    h.clock.advance(40)
    old = h.state.to_dict()
    del old["estimates"]  # a checkpoint written before the estimates were kept (test_estimates_checkpoint.py)
    restored = CellState.from_dict(old)
    assert restored.estimates.started == {}
    name = h.task("b").name
    assert restored.estimates.remaining_s(restored, name, h.clock.now()) == 60.0
