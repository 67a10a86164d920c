"""``corral sim omega``: Omega's schedulers on the master's own snapshot and commit, under the virtual clock."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from corral.cli.main import app
from corral.sim.omega import OmegaConfig, OmegaReplay
from corral.sim.omega_experiment import RESULT_KEYS, omega_experiment, run_one, target
from corral.sim.trace import Trace, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces import load_trace

GiB = 2**30
runner = CliRunner()
SMALL = "omega:machines=30,hours=0.25"


def service(name, arrival, cpu, tasks=1, duration=500.0, priority=9):
    return TraceJob(name, "u", arrival, cpu, GiB, tasks, duration, priority=priority, appclass="latency-sensitive")


def batch(name, arrival, cpu, tasks=1, duration=20.0, priority=9):
    return TraceJob(name, "u", arrival, cpu, GiB, tasks, duration, priority=priority, appclass="batch")


def cell(*cpus):
    return [TraceMachine(f"m{i}", cpu, 16 * GiB) for i, cpu in enumerate(cpus)]


def replay(jobs, machines, **config):
    r = OmegaReplay(Trace("hand", machines, sort_jobs(jobs)), OmegaConfig(validate=True, check_commits=True, **config))
    return r, r.run_omega()


def test_a_decision_takes_t_job_plus_t_task_per_task_of_virtual_time():
    r, figures = replay([batch("b", 1.0, 100, tasks=10)], cell(4000), mode="shared")
    assert r.waits["b.u"] == pytest.approx(0.1 + 10 * 0.005)
    assert figures["schedulers"]["batch"]["transactions"] == 1


def test_monolithic_batch_waits_behind_a_slow_service_decision_and_shared_does_not():
    jobs = [service("s", 1.0, 1000), batch("b", 2.0, 1000)]
    mono, m = replay(jobs, cell(8000, 8000), mode="monolithic", service_decision_s=10.0)
    shared, s = replay(jobs, cell(8000, 8000), mode="shared", service_decision_s=10.0)
    assert mono.waits["b.u"] == pytest.approx(1.0 + 10.005 - 2.0 + 0.105)  # the service decision, then its own
    assert shared.waits["b.u"] == pytest.approx(0.105)
    assert mono.waits["s.u"] == shared.waits["s.u"] == pytest.approx(10.005)
    assert m["busyness"].keys() == {"monolithic"} and s["busyness"].keys() == {"service", "batch"}


def test_a_placement_made_stale_by_the_other_scheduler_is_a_conflict_and_is_retried_until_placed():
    # Only m0 holds 3 cores. The service scheduler snapshots at 1 s and decides for 10 s; meanwhile the batch
    # scheduler places its task on m0. The service commit finds m0 full: a conflict; its retry finds no room
    # and waits (parked) until the batch task finishes, then places the service task on m0.
    r, figures = replay([service("s", 1.0, 3000), batch("b", 1.5, 3000, duration=20.0)], cell(4000, 2000),
                        mode="shared", service_decision_s=10.0)
    svc = figures["schedulers"]["service"]
    assert svc["conflicted"] == 1 and svc["conflicts"] == 1
    assert svc["transactions"] == 3  # the conflict, the retry that found no room, the placement after the finish
    assert r.processes["service"].outcomes == [True, False, False]
    assert r.waits["s.u"] > 1.605 + 20.0 - 1.0  # not before the batch task ended
    assert r.core.state.tasks["0.s.u.sim"].machine == "m0"
    assert figures["schedulers"]["batch"] == {"transactions": 1, "conflicted": 0, "conflicts": 0, "placed": 1,
                                              "conflict_fraction": 0.0}
    assert figures["conflict_fraction"] == 1.0  # of the transactions begun in the window (until 1.5 s): the first


def test_the_same_seed_gives_the_same_runs_and_waits():
    trace = load_trace(SMALL, seed=3)
    a = run_one(trace, OmegaConfig(mode="shared", service_decision_s=10.0, seed=3))
    b = run_one(load_trace(SMALL, seed=3), OmegaConfig(mode="shared", service_decision_s=10.0, seed=3))
    assert a.figures == b.figures and a.waits == b.waits
    other = run_one(load_trace(SMALL, seed=4), OmegaConfig(mode="shared", service_decision_s=10.0, seed=4))
    assert other.waits != a.waits


def test_no_machine_is_over_committed_after_any_commit_of_either_mode():
    # check_commits runs the replay's conservation check (agents, free + requests = capacity) and
    # free >= 0 after every commit; the shared run has conflicts (its service decisions take 10 s).
    trace = load_trace("omega:machines=30,hours=0.5", seed=1)
    for mode in ("monolithic", "shared"):
        r = OmegaReplay(trace, OmegaConfig(mode=mode, service_decision_s=10.0, check_commits=True))
        figures = r.run_omega()
        assert sum(p.transactions for p in r.processes.values()) > 60
        assert figures["batch_unplaced"] == figures["service_unplaced"] == 0
        assert (r.core.state.view.free >= 0).all()
    assert figures["schedulers"]["service"]["conflicted"] > 0  # the shared run had conflicts, and survived them


@settings(max_examples=8, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s", "b"]), st.floats(0.5, 30.0), st.integers(1, 4),
                          st.integers(1, 3), st.floats(1.0, 60.0)), min_size=1, max_size=12),
       st.sampled_from([0.1, 5.0, 50.0]))
def test_any_interleaving_of_the_two_schedulers_commits_keeps_every_machine_within_its_capacity(jobs, decision):
    trace = [(service if kind == "s" else batch)(f"j{i}", round(at, 3), cores * 1000, tasks, round(length, 3))
             for i, (kind, at, cores, tasks, length) in enumerate(jobs)]
    r, figures = replay(trace, cell(4000, 4000, 2000), mode="shared", service_decision_s=decision)
    assert figures["batch_unplaced"] == figures["service_unplaced"] == 0
    assert len(r.waits) == len(trace)


def test_the_sweep_reports_the_issues_figures_for_each_mode_and_decision_time():
    summary, runs = omega_experiment(load_trace(SMALL), decisions=(0.1, 10.0))
    assert [(r["mode"], r["service_decision_s"]) for r in summary["results"]] == [
        ("monolithic", 0.1), ("monolithic", 10.0), ("shared", 0.1), ("shared", 10.0)]
    for r in summary["results"]:
        assert tuple(r) == RESULT_KEYS
        assert 0 < r["batch_wait_p50_s"] <= r["batch_wait_p90_s"]
        assert 0 <= r["conflict_fraction"] <= 1 and all(0 < b <= 1 for b in r["busyness"].values())
    assert summary["results"][0]["conflict_fraction"] == 0.0  # one scheduler has no one to conflict with
    assert summary["jobs"]["batch"] > summary["jobs"]["service"] > 0
    assert summary["target"] is not None and len(runs) == 4


def test_the_target_compares_10_s_with_0_1_s():
    rows = [{"mode": m, "service_decision_s": d, "batch_wait_p90_s": p}
            for m, d, p in (("shared", 0.1, 1.0), ("shared", 10.0, 1.1), ("monolithic", 0.1, 1.0),
                            ("monolithic", 10.0, 6.0))]
    assert target(rows) == {"shared_p90_10s_over_0_1s": 1.1, "monolithic_p90_10s_over_shared_10s": 5.455,
                            "monolithic_p90_10s_over_0_1s": 6.0, "met": True}
    rows[1]["batch_wait_p90_s"] = 1.3
    assert target(rows)["met"] is False
    assert target(rows[:2]) is None


def test_the_command_prints_a_table_writes_its_files_and_ends_with_the_results_line(tmp_path):
    result = runner.invoke(app, ["sim", "omega", "--trace", "omega:machines=16,hours=0.05", "--decision-times",
                                 "0.1,10", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {"results", "seconds"} and len(last["results"]) == 4
    assert tuple(last["results"][0]) == RESULT_KEYS
    assert "batch wait p90" in result.stdout
    for name in ("omega_omega_0.json", "omega_omega_0.csv", "omega_omega_0_waits.csv"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "omega_omega_0.json").read_text())
    assert saved["results"] == last["results"]


@pytest.mark.parametrize("flags, says", [
    (["--decision-times", "ten"], "--decision-times"),
    (["--decision-times", "1,1"], "--decision-times"),
    (["--modes", "central"], "--modes"),
    (["--trace", "omega:machines=0"], "machines >= 1"),
    (["--policy", "nope"], "--policy"),
])
def test_bad_input_is_one_line_and_exit_2(flags, says, tmp_path):
    result = runner.invoke(app, ["sim", "omega", "--out", str(tmp_path), *flags])
    assert result.exit_code == 2
    assert says in result.output and "Traceback" not in result.output
