"""``corral sim colocate``: a hand-made cell where colocation saves machines, the per-machine model
(the agent's colocation policy and memory check) on overcommitted machines, determinism, the CLI."""

import csv
import json

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.sim.experiments.colocate import MachineModel, colocate, split
from corral.sim.replay import ReplayConfig
from corral.sim.trace import Trace, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.synthetic import SERVICE_USAGE_CEILING, cpu_usage_at

GiB = 2**30
runner = CliRunner()


def small_trace() -> Trace:
    # Four 8-core machines. Services: 3 tasks of 5 cores (each needs a machine of its own);
    # batch: 3 tasks of 3 cores. Apart: 3 online machines + 2 batch machines (3 + 3 cores fit on
    # one); together the batch tasks fill the 3 cores each service machine leaves: 3 machines.
    jobs = [TraceJob("web", "alice", 0.0, 5000, 4 * GiB, tasks=3, priority=10, appclass="latency-sensitive",
                     cpu_usage=2000, memory_usage=2 * GiB),
            TraceJob("etl", "bob", 10.0, 3000, 4 * GiB, tasks=3, duration=3000.0, priority=4,
                     cpu_usage=2500, memory_usage=3 * GiB)]
    return Trace("small", [TraceMachine(f"m{i}", 8000, 32 * GiB) for i in range(4)], sort_jobs(jobs))


def test_colocating_services_and_batch_needs_fewer_machines_and_raises_usage():
    summary, runs = colocate(small_trace(), ReplayConfig(policy="utilisation-first", until=2000.0,
                                                         sample_interval_s=100.0))
    sep, col = summary["layouts"]["separate"], summary["layouts"]["colocated"]
    assert summary["cells"]["online"]["machines_needed"] == 3
    assert summary["cells"]["batch"]["machines_needed"] == 2
    assert sep["machines_needed"] == 5 and col["machines_needed"] == 3
    assert summary["machines_saved"] == 2 and summary["machines_saved_pct"] == pytest.approx(40.0)
    assert col["avg_cpu_usage_pct"] > sep["avg_cpu_usage_pct"]
    assert col["online_machines_cpu_usage_pct"] > sep["online_machines_cpu_usage_pct"]
    # Placed at their limits, services always find their demand and batch is never capped or evicted.
    assert col["online_short_s"] == 0 and col["batch_throttled_core_s"] == 0 and col["batch_evictions"] == 0
    assert col["batch_on_reclaimed_pct"] is None and "batch_on_reclaimed_pct is null" in summary["notes"][0]
    assert [r.name for r in runs] == ["online", "batch", "colocated"]
    assert all(len(r.series) == len(runs[0].series) for r in runs), "the cells' series line up"


def test_the_split_keeps_the_jobs_apart_on_a_doubled_cell():
    traces = split(small_trace())
    assert [j.name for j in traces["online"].jobs] == ["web"]
    assert [j.name for j in traces["batch"].jobs] == ["etl"]
    assert len(traces["colocated"].machines) == 8 and traces["colocated"].machines[4].name == "m0-c"


def job(name, cpu, use, appclass="batch", memory=GiB, memory_use=GiB, priority=4):
    return TraceJob(name, "u", 0.0, cpu, memory, priority=priority, appclass=appclass,
                    cpu_usage=use, memory_usage=memory_use)


def test_on_an_overcommitted_machine_batch_is_capped_to_what_the_services_leave():
    model = MachineModel(Trace("t", [TraceMachine("m", 8000, 32 * GiB)], []), lambda: 43200.0)
    service = job("web", 8000, 4000, "latency-sensitive", priority=10)
    batch = job("etl", 6000, 6000)  # 8 + 6 cores of limits on 8: overcommitted
    totals, evictions = model.sample({"web/0": ("m", 0, service), "etl/0": ("m", 0, batch)}, 43200.0)
    demand = cpu_usage_at(service, 43200.0)
    reserve = min(8000, round(demand * 1.25))
    assert totals["ls_demand"] == totals["ls_got"] == demand
    assert totals["batch_got"] == 8000 - reserve
    assert totals["throttled"] == 6000 - (8000 - reserve)
    assert totals["short"] == 0 and evictions == 0 and totals["busy_machines"] == 1


def test_services_over_the_machine_are_short_and_memory_pressure_evicts_batch_first():
    model = MachineModel(Trace("t", [TraceMachine("m", 8000, 32 * GiB)], []), lambda: 0.0)
    running = {f"web/{i}": ("m", 0, job("web", 6000, 5000, "latency-sensitive", priority=10, memory_use=12 * GiB))
               for i in range(2)}
    running["etl/0"] = ("m", 0, job("etl", 2000, 2000, memory_use=8 * GiB))
    totals, evictions = model.sample(running, 0.0)
    assert totals["ls_demand"] > 8000 and totals["ls_got"] == 8000 and totals["short"] == 1
    assert totals["batch_got"] == 0
    assert evictions == 1  # 32 GiB of use on 32 GiB: the batch task goes, not a service


def test_services_use_a_diurnal_share_of_their_limit_and_never_reach_it():
    service = job("web", 4000, 2000, "latency-sensitive")
    day = [cpu_usage_at(service, h * 3600.0) for h in range(24)]
    assert max(day) > 2000 > min(day) and max(day) <= SERVICE_USAGE_CEILING * 4000
    assert day.index(max(day)) == 20
    assert cpu_usage_at(job("etl", 4000, 3000), 7 * 3600.0) == 3000


def test_the_summary_is_the_same_for_the_same_trace_and_seed_but_for_seconds():
    config = ReplayConfig(policy="utilisation-first", until=1000.0, sample_interval_s=100.0)
    one, _ = colocate(small_trace(), config)
    two, _ = colocate(small_trace(), config)
    one.pop("seconds"), two.pop("seconds")
    assert one == two


def test_the_command_prints_its_table_writes_its_files_and_ends_with_one_json_line(tmp_path):
    args = ["sim", "colocate", "--trace", "synthetic:machines=6,tasks=120,hours=2", "--until", "3600",
            "--out", str(tmp_path), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["experiment"] == "colocate" and "seconds" in last and set(last["layouts"]) == {"separate", "colocated"}
    assert "separate" in result.stdout and "colocated" in result.stdout and "reclaimed" in result.stdout
    names = {p.name for p in tmp_path.iterdir()}
    assert {"colocate_synthetic_0.json", "colocate_synthetic_0_usage.csv", "colocate_synthetic_0.png"} <= names
    with (tmp_path / "colocate_synthetic_0_usage.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["cell"] for r in rows} == {"online", "batch", "colocated"}
    again = runner.invoke(app, args[:-1])
    assert json.loads(again.stdout.strip().splitlines()[-1]).keys() == {"experiment", "seconds"}


def test_a_bad_policy_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["sim", "colocate", "--policy", "tightest", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "tightest" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
