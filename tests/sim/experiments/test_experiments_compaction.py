import json

from experiment_cells import GiB, job, machines, trace

from corral.sim.experiments.checkpoint import checkpoint
from corral.sim.experiments.compaction import compaction
from corral.sim.experiments.run import parse_policies, run
from corral.sim.experiments.search import allowed_pending, lower_bound, minimum_cell
from corral.sim.trace import TraceMachine


def test_a_workload_that_needs_four_of_ten_machines_compacts_to_four_for_every_seed():
    # One 3-core task per 4-core machine: capacity alone would allow 3 machines (12 cores).
    cp = checkpoint(trace(machines(10), [job("web", 4, 3000)]))
    result = compaction(cp, ["hybrid", "worst-fit"], list(range(11)))
    for policy in ("hybrid", "worst-fit"):
        figures = result["policies"][policy]
        assert figures["min_machines"] == [4] * 11
        assert figures["p90"] == 4 and figures["p90_pct"] == 40.0 and figures["mean"] == 4
        assert figures["pending"] == [0] * 11
    assert result["tasks"] == 4 and result["machines"] == 10 and result["allowed_pending"] == 0


def test_a_few_tasks_may_stay_pending():
    # One-core tasks on 4-core machines; 0.2 % of 1002 tasks is 2: 250 machines leave 2 pending, 249 leave 6.
    assert allowed_pending(1000) == 2 and allowed_pending(499) == 0
    trial = minimum_cell(machines(300), [job("many", 1002, 1000)], "best-fit", 0)
    assert trial.min_machines == 250 and trial.pending == 2


def test_the_lower_bound_counts_capacity_less_the_largest_tasks_allowed_to_wait():
    cell = machines(10)
    assert lower_bound(cell, [job("a", 8, 2000)], 0) == 4  # 16 cores
    assert lower_bound(cell, [job("a", 8, 2000)], 2) == 3  # 12 cores
    assert lower_bound(cell, [job("a", 2, 2000)], 2) == 0  # everything may wait
    assert lower_bound(cell, [job("a", 1, 100, memory=40 * GiB)], 0) == 3  # memory: 16 GiB each


def test_by_default_the_checkpoint_is_what_the_trace_cell_runs():
    cp = checkpoint(trace(machines(3), [job("web", 5, 3000), job("idle", 1, 4000, priority=0)]))
    assert [(j.name, j.tasks) for j in cp.jobs] == [("web", 3)]
    assert (cp.snapshot_tasks, cp.overflow, cp.tasks) == (6, 3, 3)
    assert any("3 of the snapshot's 6 tasks do not fit" in n and "1 whole jobs, part of 1 more" in n for n in cp.notes)


def test_a_workload_larger_than_the_cell_is_searched_for_on_a_cell_grown_by_clones():
    cp = checkpoint(trace(machines(3), [job("web", 5, 3000)]), keep_overflow=True)
    result = compaction(cp, ["hybrid"], [0, 1])
    assert result["policies"]["hybrid"]["min_machines"] == [5, 5]
    assert result["policies"]["hybrid"]["p90_pct"] == 166.67
    assert any("grown with clones" in n for n in result["notes"])
    # A burst of ten times the cell: the search starts where capacity allows, not at the cell's size.
    burst = minimum_cell(machines(3), [job("web", 30, 3000)], "hybrid", 0)
    assert burst.min_machines == 30 and burst.probes <= 6


def test_a_workload_asking_for_what_the_cell_lacks_finds_no_size_without_probing():
    trial = minimum_cell(machines(3), [job("gpu", 2, 1000, gpu=1)], "hybrid", 0)
    assert (trial.min_machines, trial.probes) == (None, 0)


def test_a_task_no_machine_can_hold_is_left_out_and_said_so():
    cp = checkpoint(trace(machines(3), [job("web", 2, 3000), job("giant", 1, 9000)]))
    assert [j.name for j in cp.jobs] == ["web"]
    assert any("larger than every machine" in n and "giant" in n for n in cp.notes)


def _mixed():
    cell = machines(26) + [TraceMachine(f"big{i}", 8000, 32 * GiB) for i in range(14)]
    jobs = [job(f"j{i:02d}", 1 + i % 5, 300 + 450 * (i % 7), memory=(1 + i % 4) * GiB, priority=(i * 5) % 12,
                arrival=float(i), duration=1000.0) for i in range(30)]
    return trace(cell, jobs, "mixed")


def _without_timing(result):
    return json.dumps({k: v for k, v in result.items() if k not in ("seconds", "events_per_s")}, sort_keys=True)


def test_same_seed_same_result_and_any_number_of_workers_gives_the_same(tmp_path):
    t = _mixed()
    one = run("compaction", t, ["hybrid", "best-fit"], [3, 4, 5], plot_path=tmp_path / "a.png", workers=1)
    again = run("compaction", t, ["hybrid", "best-fit"], [3, 4, 5], plot_path=tmp_path / "a.png", workers=1)
    two = run("compaction", t, ["hybrid", "best-fit"], [3, 4, 5], plot_path=tmp_path / "a.png", workers=2)
    assert _without_timing(one) == _without_timing(again) == _without_timing(two)
    assert list(one)[-3:] == ["events", "seconds", "events_per_s"] and one["events"] > 0
    assert (tmp_path / "a.png").stat().st_size > 0


def test_policies_come_repeated_or_comma_separated_and_weighted_specs_stay_whole():
    assert parse_policies(["hybrid,best-fit", "worst-fit", "hybrid"]) == ["hybrid", "best-fit", "worst-fit"]
    assert parse_policies(["best-fit=1,spread=0.5"]) == ["best-fit=1,spread=0.5"]
