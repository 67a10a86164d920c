"""``corral sim colocate``: a hand-made cell where colocation saves machines, the per-machine model
(the agent's colocation policy and memory check) on overcommitted machines, reclamation in the
replays (the master's reservations, evictions and placements in reclaimed room) and the checks it is
held to, determinism, the CLI."""

import csv
import json

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.master.reservations import ReservationPolicy
from corral.sim.experiments.colocate import MachineModel, colocate, run_cell, split
from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces import load_trace
from corral.sim.traces.synthetic import SERVICE_USAGE_CEILING, cpu_usage_at, memory_usage_at, usage_at

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
    # Every batch task fits beside a service at its limit: nothing needs reclaimed room here.
    assert col["online_short_s"] == 0 and col["batch_throttled_core_s"] == 0 and col["batch_evictions"] == 0
    assert col["batch_on_reclaimed_pct"] == 0.0 and summary["usage_interval_s"] == 600.0
    assert summary["cells"]["colocated"]["usage_reports"] > 0
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
    running = {f"web/{i}": ("m", 0, job("web", 6000, 5000, "latency-sensitive", memory=16 * GiB, priority=10,
                                        memory_use=12 * GiB)) for i in range(2)}
    running["etl/0"] = ("m", 0, job("etl", 2000, 2000, memory_use=8 * GiB))
    totals, evictions = model.sample(running, 0.0)
    assert totals["ls_demand"] > 8000 and totals["ls_got"] == 8000 and totals["short"] == 1
    assert totals["batch_got"] == 0
    assert evictions == 1  # over 32 GiB of use on 32 GiB: the batch task goes, not a service


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


# ---- reclamation in the replays ------------------------------------------------------------------------


def reclaiming_trace() -> Trace:
    # Two 8-core machines, each with a service of 5 cores using 1-3 (diurnal) and 12 batch tasks of
    # 3 cores using 1: at limits only 2 batch tasks fit beside the services (1 per machine); the rest
    # can only run in the room the services' and batch's decayed reservations leave.
    jobs = [TraceJob("web", "alice", 0.0, 5000, 8 * GiB, tasks=2, priority=10, appclass="latency-sensitive",
                     cpu_usage=2000, memory_usage=4 * GiB, max_per_machine=1),
            TraceJob("etl", "bob", 600.0, 3000, 2 * GiB, tasks=12, duration=20000.0, priority=4,
                     cpu_usage=1000, memory_usage=GiB)]
    return Trace("reclaiming", [TraceMachine(f"m{i}", 8000, 32 * GiB) for i in range(2)], sort_jobs(jobs))


def test_batch_runs_in_reclaimed_room_and_production_is_never_short_for_it():
    config = ReplayConfig(policy="utilisation-first", until=30000.0, sample_interval_s=300.0, usage_interval_s=300.0,
                          validate=True)
    run = run_cell("colocated", reclaiming_trace(), config)
    assert run.reclaimed_core_s > 0 and run.reclaimed_core_s < run.batch_core_s
    assert run.summary["placements"] > 2 and run.summary["usage_reports"] > 0
    # Conservation: the services got all the CPU they demanded, no machine's memory use passed its
    # memory, and no task used more than the master reserved for it.
    assert run.online_short_s == 0 and run.memory_over_s == 0 and run.below_usage == 0
    # The limits the view holds exceed the machines' CPU: that excess is the reclaimed room in use.
    assert max(row[8] for row in run.series) > 16000


def test_the_masters_cpu_allowances_cap_reclaimed_batch_below_what_it_demands():
    sim = Replay(reclaiming_trace(), ReplayConfig(until=12000.0, usage_interval_s=300.0), usage_at=usage_at)
    sim.run()
    reclaimed = [n for n, t in sim.core.state.tasks.items() if t.reclaimed]
    assert reclaimed, "some batch runs in reclaimed room"
    allowed = {t: c for caps in sim.agents.reclaimed_cpu.values() for t, c in caps.items()}
    assert set(reclaimed) <= set(allowed) and all(0 < c <= 3000 for c in allowed.values())


def test_rising_service_memory_makes_the_master_evict_reclaimed_batch_and_place_it_again():
    # One 32 GiB machine. The service (31 GiB limit) uses 24 GiB on average, +-10 % over the day: in the
    # morning it reserves 21.6 x 1.1 = 23.8 GiB, which leaves room for the 8 GiB batch task (placed only
    # in reclaimed room: 31 + 8 GiB of limits on 32); in the evening 26.4 x 1.1 = 29 GiB, and the batch
    # task's 6.6 GiB no longer fit: the master evicts it, and places it again when the night lowers the
    # service's reservation.
    jobs = [TraceJob("web", "alice", 0.0, 2000, 31 * GiB, priority=10, appclass="latency-sensitive",
                     cpu_usage=1000, memory_usage=24 * GiB),
            TraceJob("etl", "bob", 7 * 3600.0, 2000, 8 * GiB, duration=30 * 3600.0, priority=4,
                     cpu_usage=1000, memory_usage=6 * GiB)]
    trace = Trace("squeeze", [TraceMachine("m0", 8000, 32 * GiB)], sort_jobs(jobs))
    sim = Replay(trace, ReplayConfig(until=36 * 3600.0, sample_interval_s=300.0, usage_interval_s=300.0,
                                     validate=True), usage_at=usage_at)
    in_use = []

    def sample(now, _):  # what the running tasks use on the machine, at every sample
        in_use.append(sum(memory_usage_at(job, now) for _, _, job in sim.agents.running.values()))

    result = sim.run(sample)
    assert result.summary["reclaim_evictions"] >= 1
    etl = sim.core.state.tasks["0.etl.bob.sim"]
    assert any(h.via == "evict" for h in etl.history)
    assert etl.state.value == "running" and etl.reclaimed  # back in reclaimed room after the night
    assert "needed its reserved memory" in next(h.note for h in etl.history if h.via == "evict")
    # Evicted in time: what the tasks used never passed the machine's memory (the service alone peaks at
    # 26.4 GiB, with the batch task's 6 GiB that would be 32.4 GiB).
    assert max(in_use) <= 32 * GiB and max(in_use) > 26 * GiB


def test_the_reservation_check_fails_when_reports_are_too_rare_for_a_margin_of_nothing():
    # With no margin and a report every 4 h the services' rising usage passes their reservations between
    # reports: the replay's check counts it (it is not a check that cannot fail).
    config = ReplayConfig(policy="utilisation-first", until=86400.0, sample_interval_s=1800.0,
                          usage_interval_s=4 * 3600.0, reservation_policy=ReservationPolicy(margin=0.0))
    run = run_cell("colocated", reclaiming_trace(), config)
    assert run.below_usage > 0


def test_on_the_synthetic_trace_colocated_batch_runs_on_reclaimed_room_and_the_checks_hold():
    trace = load_trace("synthetic:machines=12,tasks=1200,hours=24", seed=3)
    summary, _ = colocate(trace, ReplayConfig(policy="utilisation-first", until=86400.0))
    col = summary["layouts"]["colocated"]
    assert col["batch_on_reclaimed_pct"] > 0
    assert col["online_short_s"] == 0 and col["memory_over_s"] == 0 and col["reservation_below_usage"] == 0
    assert summary["layouts"]["separate"]["reservation_below_usage"] == 0
