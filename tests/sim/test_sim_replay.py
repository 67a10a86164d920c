"""Small replays whose outcome is computed by hand, and the replay's invariants."""

import random

import pytest

from corral.sim.replay import Replay, ReplayConfig, replay
from corral.sim.trace import Trace, TraceJob, TraceMachine, sort_jobs

GiB = 2**30


def cell(n, cpu=4000, memory=16 * GiB, gpu=0):
    return [TraceMachine(f"m{i}", cpu, memory, gpu=gpu) for i in range(n)]


def run(machines, jobs, **config):
    config.setdefault("validate", True)
    return replay(Trace("t", machines, sort_jobs(jobs)), ReplayConfig(**config))


def test_a_task_waits_for_room_and_its_delay_is_measured():
    # Two 4-core machines; job a's two 3-core tasks start in the first round (t=1) and run 100 s.
    # Job b's 3-core task (t=10) fits nowhere until a finishes at t=101; the next round is at 102.
    jobs = [TraceJob("a", "u1", 0.0, 3000, GiB, tasks=2, duration=100.0),
            TraceJob("b", "u2", 10.0, 3000, GiB, duration=50.0)]
    result = run(cell(2), jobs, round_interval_s=1.0)
    s = result.summary
    assert sorted(result.delays) == [1.0, 1.0, 92.0]
    assert s["placements"] == 3 and s["finished"] == 3 and s["started"] == 3
    assert s["simulated_s"] == 152.0  # b starts at 102 and runs 50 s
    assert s["pending_delay_s"]["max"] == 92.0 and s["pending_delay_s"]["p50"] == 1.0
    assert s["pending_at_end"] == 0 and s["never_ran"] == 0 and s["preemptions"] == 0
    assert s["unplaced_attempts"] == 1  # b, once, in the round at t=11; parked until a finished
    assert s["ended"] == {"finish": 3}


def test_allocation_is_sampled_from_the_cell_view():
    # One 4-core machine, one 2-core task from t=1 to t=101: allocation 0.5 while it runs.
    jobs = [TraceJob("a", "u1", 0.0, 2000, 4 * GiB, duration=100.0, cpu_usage=500, memory_usage=GiB)]
    result = run(cell(1), jobs, sample_interval_s=10.0)
    rows = {row[0]: row for row in result.samples}
    assert rows[0.0][1] == 0.0
    assert rows[50.0][1] == 0.5 and rows[50.0][2] == 0.25  # cpu, memory allocated
    assert rows[50.0][4] == 0.125 and rows[50.0][5] == 1 / 16  # usage reported by the agents
    assert result.summary["allocation"]["cpu"]["peak"] == 0.5


def test_a_departing_job_is_killed_and_a_job_that_never_ran_is_counted():
    # A service holds the only machine until it departs at t=60; the batch job waiting behind it
    # departs at t=30, before it ever ran.
    jobs = [TraceJob("svc", "u1", 0.0, 4000, GiB, departure=60.0, priority=9, appclass="latency-sensitive"),
            TraceJob("late", "u2", 5.0, 4000, GiB, duration=10.0, departure=30.0)]
    s = run(cell(1), jobs).summary
    assert s["placements"] == 1 and s["never_ran"] == 1 and s["ended"] == {"kill": 2}
    assert s["pending_at_end"] == 0 and s["finished"] == 0


def test_production_preempts_batch_and_the_victim_runs_again_later():
    # The batch task fills the machine; the production task arriving at t=10 evicts it (round at 11);
    # the batch task gets the machine back when production finishes at 11 + 20 = 31 (round at 32).
    jobs = [TraceJob("batch", "u1", 0.0, 4000, GiB, duration=100.0, priority=3),
            TraceJob("prod", "u2", 10.0, 4000, GiB, duration=20.0, priority=9)]
    result = run(cell(1), jobs)
    s = result.summary
    assert s["preemptions"] == 1
    assert sorted(result.delays) == [1.0, 1.0, 21.0]  # batch waited from 11 (evicted) to 32
    assert s["finished"] == 2 and s["simulated_s"] == 132.0


def test_per_user_share_is_the_time_averaged_dominant_share():
    # u1 holds half the cpu (and a quarter of memory) for 100 of the 200 simulated seconds.
    jobs = [TraceJob("a", "u1", 0.0, 2000, 4 * GiB, duration=100.0),
            TraceJob("b", "u2", 0.0, 1000, 8 * GiB, duration=199.0)]
    s = run(cell(1), jobs, round_interval_s=1.0).summary
    share = s["per_user_share"]
    assert share["u1"]["peak"] == 0.5 and share["u2"]["peak"] == 0.5
    assert share["u1"]["mean"] == pytest.approx(0.5 * 100 / 200)
    assert share["u2"]["mean"] == pytest.approx(0.5 * 199 / 200)


def random_trace(seed, machines=6, jobs=40):
    rng = random.Random(seed)
    out = []
    for j in range(jobs):
        gpu = rng.random() < 0.2
        out.append(TraceJob(
            f"j{j}", f"u{rng.randrange(4)}", round(rng.uniform(0, 500), 1), rng.choice([500, 1000, 2000, 3000]),
            rng.choice([1, 2, 4]) * GiB, tasks=rng.randint(1, 5),
            duration=None if rng.random() < 0.15 else round(rng.uniform(5, 300), 1),
            departure=round(rng.uniform(100, 900), 1) if rng.random() < 0.2 else None,
            gpu=1 if gpu else 0, gpu_milli=rng.choice([250, 500, 1000]) if gpu else 1000,
            priority=rng.choice([0, 2, 5, 9]), cpu_usage=300, memory_usage=GiB))
    return Trace("random", cell(machines, gpu=2), sort_jobs(out))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nothing_is_lost_or_counted_twice_on_random_traces(seed):
    # validate=True checks the state after every command and conservation at every sample
    # (Replay.check: agents vs master, free + running == capacity, GPUs included).
    trace = random_trace(seed)
    sim = Replay(trace, ReplayConfig(validate=True, sample_interval_s=7.0, seed=seed, until=1200.0))
    result = sim.run()
    s = result.summary
    assert s["placements"] == s["started"] > 0
    assert s["placements"] == len(result.delays)
    ran_out = sum(v for k, v in s["ended"].items())
    # every task that ever became pending is placed, still pending, or ended without running
    assert s["started"] - s["finished"] - (ran_out - s["ended"].get("finish", 0) - s["never_ran"]) == \
        sum(1 for t in sim.core.state.tasks.values() if t.state.value == "running")


def test_same_seed_same_summary_other_seed_may_differ():
    trace = random_trace(7)
    a = replay(trace, ReplayConfig(policy="random", seed=3, until=1000.0)).summary
    b = replay(trace, ReplayConfig(policy="random", seed=3, until=1000.0)).summary
    assert a == b


# ---- reclamation: agents' usage reports into the master ------------------------------------------------


def reclaim_jobs():
    # One 4-core machine: a production service of 2 cores using 0.5, batch of 2 x 2 cores using 0.5.
    # At limits only one batch task fits beside the service; once the master's reservations decayed
    # (550 + 550 m), the second fits in the room they leave.
    return [TraceJob("web", "u1", 0.0, 2000, GiB, priority=10, appclass="latency-sensitive", cpu_usage=500,
                     memory_usage=GiB // 2),
            TraceJob("etl", "u2", 10.0, 2000, GiB, tasks=2, duration=5000.0, priority=4, cpu_usage=500,
                     memory_usage=GiB // 2)]


def test_usage_reports_let_the_master_place_batch_in_reclaimed_room():
    sim = Replay(Trace("t", cell(1), sort_jobs(reclaim_jobs())),
                 ReplayConfig(until=2000.0, usage_interval_s=60.0, validate=True))
    s = sim.run().summary
    assert s["placements"] == 3 and s["pending_at_end"] == 0
    assert s["reclaim_evictions"] == 0 and s["preemptions"] == 0
    assert s["usage_reports"] == 2000 // 60  # one machine busy from the first report on
    reclaimed = sorted(n for n, t in sim.core.state.tasks.items() if t.reclaimed)
    assert len(reclaimed) == 1 and reclaimed[0].endswith(".etl.u2.sim")
    # The agents were told the reclaimed task's CPU: what the service's reservation leaves, at most its limit.
    assert sim.agents.reclaimed_cpu == {"m0": {reclaimed[0]: 2000}}
    assert sim.core.state.view.free[0, 0] == -2000  # limits over the machine by what reclaimed work holds


def test_without_usage_reports_every_reservation_stays_at_its_limit():
    sim = Replay(Trace("t", cell(1), sort_jobs(reclaim_jobs())), ReplayConfig(until=2000.0, validate=True))
    s = sim.run().summary
    assert s["placements"] == 2 and s["pending_at_end"] == 1 and "usage_reports" not in s
    assert not any(t.reclaimed for t in sim.core.state.tasks.values())


def test_a_replay_with_reclamation_is_the_same_for_the_same_seed():
    trace = Trace("t", cell(3), sort_jobs(reclaim_jobs()))
    one = replay(trace, ReplayConfig(until=3000.0, usage_interval_s=100.0, seed=5)).summary
    two = replay(trace, ReplayConfig(until=3000.0, usage_interval_s=100.0, seed=5)).summary
    assert one == two and one["usage_reports"] > 0


def test_a_usage_interval_must_be_positive():
    with pytest.raises(ValueError, match="usage_interval_s"):
        replay(Trace("t", cell(1), sort_jobs(reclaim_jobs())), ReplayConfig(usage_interval_s=0.0))
