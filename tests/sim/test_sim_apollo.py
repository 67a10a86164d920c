"""``corral sim apollo``: stragglers picked by a seeded hash, the figures on a hand-computed run, every
variant under the replay's conservation checks (copies and machine queues), and determinism."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from corral.sim.apollo import (VARIANTS, Stragglers, apollo_experiment, limit_jobs, parse_stragglers, run_variant,
                               study_speculation)
from corral.sim.trace import Trace, TraceJob, TraceMachine, sort_jobs

GiB = 1 << 30
SLOW = "0.sort.u1.sim"


@dataclass(frozen=True)
class OneSlow(Stragglers):
    def slowed(self, task: str) -> bool:
        return task == SLOW


def one_job() -> Trace:
    return Trace("one", [TraceMachine(f"m{i}", 4000, 16 * GiB) for i in range(3)],
                 sort_jobs([TraceJob("sort", "u1", 0.0, 1000, GiB, tasks=10, duration=10.0, appclass="batch")]))


def test_parse_stragglers():
    s = parse_stragglers("0.05:5", seed=3)
    assert (s.fraction, s.slowdown, s.seed, s.text) == (0.05, 5.0, 3, "0.05:5")
    for bad in ("2:5", "0.1", "x:y", "0.1:0.5", "", "-0.1:5"):
        with pytest.raises(ValueError, match="--stragglers"):
            parse_stragglers(bad)


def test_stragglers_are_a_seeded_fraction_of_tasks():
    names = [f"{i}.job{i % 7}.u.sim" for i in range(20_000)]
    a, b = Stragglers(0.05, 5, seed=1), Stragglers(0.05, 5, seed=2)
    picked = [n for n in names if a.slowed(n)]
    assert 0.045 < len(picked) / len(names) < 0.055
    assert picked == [n for n in names if Stragglers(0.05, 5, seed=1).slowed(n)]  # the same every time
    assert picked != [n for n in names if b.slowed(n)]
    assert not any(Stragglers(0.0, 5).slowed(n) for n in names[:1000])


def test_the_figures_of_a_hand_computed_run():
    # Ten 1-core 10 s tasks start at 1 s (the first round); nine end at 11 s, SLOW's first run would
    # take 100 s. At the tick of 17 s it has run 16 s > 1.5 x the siblings' p90 (10 s): a copy starts,
    # ends at 27 s and wins; the first run is killed after 26 s.
    trace = one_job()
    base, _ = run_variant(trace, "baseline", OneSlow(1.0, 10.0), speculation=study_speculation(trace), validate=True)
    fixed, replay = run_variant(trace, "corrections", OneSlow(1.0, 10.0), speculation=study_speculation(trace),
                                validate=True)
    assert base["job_completion_p90_s"] == 101.0 and base["stragglers"] == 1
    assert base["extra_cpu_pct"] == 0.0 and base["corrections_triggered"] == 0 and base["core_s"] == 190.0
    assert fixed["job_completion_p50_s"] == 27.0
    assert (fixed["corrections_triggered"], fixed["corrections_succeeded"], fixed["speculative_copies"]) == (1, 1, 1)
    assert fixed["correction_success_rate"] == 1.0
    assert fixed["core_s"] == 126.0  # 9 x 10 + 26 (the killed first run) + 10 (the copy)
    assert fixed["extra_cpu_pct"] == round(100 * 10 / 116, 3)
    assert fixed["tasks_finished"] == 10 and replay.finishes[SLOW] == 1  # finished once, by its copy
    assert fixed["wait_estimate_error_pct"] is None  # nothing was queued


def crowded() -> Trace:
    """More work than the cell holds at once, so machine queues fill, with siblings to compare."""
    machines = [TraceMachine(f"m{i}", 4000, 16 * GiB) for i in range(3)]
    jobs = [TraceJob(f"j{i}", f"u{i % 2}", 5.0 * i, 1000, GiB, tasks=8, duration=10.0 + i, appclass="batch")
            for i in range(6)]
    return Trace("crowded", machines, sort_jobs(jobs))


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_keeps_conservation(variant):
    trace = crowded()
    figures, replay = run_variant(trace, variant, Stragglers(0.2, 5.0, seed=4), speculation=study_speculation(trace),
                                  validate=True)  # Replay.check after every command: copies, queues, resources
    assert figures["jobs_succeeded"] == 6 and figures["tasks_finished"] == 48
    assert max(replay.finishes.values()) == 1
    assert replay.agents.running == {} and replay.agents.queued == {}
    if variant in ("estimates", "apollo"):
        assert figures["started_from_queue"] > 0 and figures["wait_estimate_error_pct"] is not None
    if variant in ("corrections", "apollo"):
        assert figures["speculative_copies"] > 0


def test_apollo_beats_baseline_and_is_deterministic():
    trace = crowded()
    a = apollo_experiment(trace, Stragglers(0.2, 5.0, seed=4))
    b = apollo_experiment(trace, Stragglers(0.2, 5.0, seed=4))
    strip = lambda s: {k: ({kk: vv for kk, vv in v.items() if kk != "seconds"} if isinstance(v, dict) else v)
                       for k, v in s.items() if k != "seconds"}
    assert strip(a) == strip(b)
    assert a["apollo"]["job_completion_p90_s"] < a["baseline"]["job_completion_p90_s"]
    assert a["target"]["apollo_p90_lower_pct"] > 0
    for v in VARIANTS:
        for key in ("job_completion_p50_s", "job_completion_p90_s", "task_wait_p90_s", "extra_cpu_pct",
                    "corrections_triggered", "corrections_succeeded", "seconds"):
            assert key in a[v]


def test_limit_jobs():
    trace = crowded()
    assert [j.name for j in limit_jobs(trace, 2).jobs] == [j.name for j in trace.jobs[:2]]
    assert limit_jobs(trace, None) is trace
    with pytest.raises(ValueError, match="--limit-jobs"):
        limit_jobs(trace, 0)
