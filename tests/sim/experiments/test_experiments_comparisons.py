from experiment_cells import GiB, job, machines, trace

from corral.sim.experiments.buckets import buckets, round_cpu, round_memory
from corral.sim.experiments.checkpoint import checkpoint
from corral.sim.experiments.compaction import compaction
from corral.sim.experiments.reclaim import reclaim
from corral.sim.experiments.segregate import segregate

SEEDS = [0, 1, 2]


def test_separate_cells_cost_the_machine_a_half_full_production_cell_wastes():
    # 4-core machines, 2-core tasks: 3 production tasks need 2 machines alone, 1 batch task 1 more;
    # shared, all 4 tasks fit on 2 machines: segregation costs (2 + 1 - 2) / 2 = 50 %.
    cp = checkpoint(trace(machines(6), [job("prod", 3, 2000, priority=9), job("batch", 1, 2000, priority=4)]))
    figures = segregate(cp, ["hybrid"], SEEDS)["policies"]["hybrid"]
    assert figures["combined"]["min_machines"] == [2, 2, 2]
    assert figures["prod"]["min_machines"] == [2, 2, 2] and figures["nonprod"]["min_machines"] == [1, 1, 1]
    assert figures["extra_pct"] == [50.0] * 3 and figures["extra_pct_p90"] == 50.0


def test_monitoring_counts_as_production_and_an_empty_part_needs_no_machines():
    cp = checkpoint(trace(machines(4), [job("mon", 2, 2000, priority=11)]))
    result = segregate(cp, ["hybrid"], [0])
    assert result["prod_tasks"] == 2 and result["nonprod_tasks"] == 0
    assert result["policies"]["hybrid"]["nonprod"]["min_machines"] == [0]
    assert result["policies"]["hybrid"]["extra_pct"] == [0.0]
    assert any("no non-production work" in n for n in result["notes"])


def test_requests_round_up_to_powers_of_two_of_a_core_and_of_a_byte():
    assert [round_cpu(m) for m in (100, 125, 300, 999, 1000, 1300, 2400, 4000, 4001)] == [
        125, 125, 500, 1000, 1000, 2000, 4000, 4000, 8000]
    assert round_cpu(1) == 2  # 1000 / 512 = 1.95 millicores, rounded up to a whole millicore
    assert [round_memory(b) for b in (1, 3, GiB, GiB + 1, 6 * GiB)] == [1, 4, GiB, 2 * GiB, 8 * GiB]


def test_bucketing_costs_the_machines_the_rounding_wastes():
    # 1.3 cores fit 3 to a 4-core machine; rounded to 2 cores only 2 do: 6 tasks need 2 machines, then 3.
    cp = checkpoint(trace(machines(5), [job("odd", 6, 1300, memory=GiB)]))
    result = buckets(cp, ["best-fit"], SEEDS)
    figures = result["policies"]["best-fit"]
    assert figures["original"]["min_machines"] == [2] * 3 and figures["bucketed"]["min_machines"] == [3] * 3
    assert figures["extra_machines_pct"] == [50.0] * 3 and figures["extra_machines_pct_p90"] == 50.0
    assert result["extra_requested_pct"] == {"cpu": 53.85, "memory": 0.0}


def test_reclamation_places_non_production_work_in_the_room_the_masters_reservations_leave():
    # Without: 6 x 2 cores on 4-core machines = 3 machines. With: at limits 2 machines hold 4 tasks;
    # then the master's reservations decay to usage x 1.1 (prod 550 m, batch 990 m) and its rounds
    # place the last 2 batch tasks in the room they leave, one per machine (3 of the 2-core limits
    # of 4: the room is what reservations leave, at most the limit's worth). Those 2 tasks of 6, 4 of
    # the 12 placed cores, half the batch work, are marked reclaimed by the master.
    jobs = [job("prod", 2, 2000, priority=10, cpu_usage=500), job("batch", 4, 2000, priority=2, cpu_usage=900)]
    result = reclaim(checkpoint(trace(machines(6), jobs)), ["hybrid"], SEEDS)
    figures = result["policies"]["hybrid"]
    assert figures["limit"]["min_machines"] == [3] * 3 and figures["reclaimed"]["min_machines"] == [2] * 3
    assert figures["saving_pct"] == [33.33] * 3 and figures["saving_pct_p90"] == 33.33
    assert figures["on_reclaimed"]["cpu_pct"] == [33.33] * 3
    assert figures["on_reclaimed"]["cpu_pct_of_nonprod"] == [50.0] * 3
    assert figures["on_reclaimed"]["tasks_pct"] == [33.33] * 3
    # A reclaimed task is in reclaimed room whole: its memory limit counts too.
    assert figures["on_reclaimed"]["memory_pct"] == [33.33] * 3
    assert any("the master's reservation estimator over simulated time" in n for n in result["notes"])


def test_a_larger_margin_reserves_more_and_reclaims_less():
    # 3 batch tasks of 2 cores using 0.9 on 4-core machines: at limits 2 machines. With a 10 % margin
    # two reserve 990 m each after the decay, and the third fits in the 2,020 m they leave: 1 machine.
    # With a 150 % margin a reservation decays to 2,250 m, capped at the limit: nothing to reclaim.
    jobs = [job("batch", 3, 2000, priority=2, cpu_usage=900)]
    tight = reclaim(checkpoint(trace(machines(4), jobs)), ["hybrid"], [0])["policies"]["hybrid"]
    wide = reclaim(checkpoint(trace(machines(4), jobs)), ["hybrid"], [0], margin=1.5)["policies"]["hybrid"]
    assert tight["limit"]["min_machines"] == [2] and tight["reclaimed"]["min_machines"] == [1]
    assert tight["on_reclaimed"]["tasks_pct"] == [33.33] and tight["saving_pct"] == [50.0]
    assert wide["reclaimed"]["min_machines"] == [2]
    assert wide["on_reclaimed"]["tasks_pct"] == [0.0] and wide["saving_pct"] == [0.0]


def test_without_usage_reclamation_saves_nothing_and_says_so():
    cp = checkpoint(trace(machines(4), [job("batch", 4, 2000)]))
    result = reclaim(cp, ["hybrid"], [0])
    assert result["policies"]["hybrid"]["saving_pct"] == [0.0]
    # The two forms are the same workload: searched once, its master events counted once.
    assert result["events"] == compaction(cp, ["hybrid"], [0])["events"]
    assert any("no usage" in n for n in result["notes"])


def test_reclamation_over_time_gives_the_same_result_in_worker_processes_and_run_to_run():
    # The reservation policy travels to the workers with the workloads: 2 workers, 1 worker and a
    # second run agree exactly.
    jobs = [job("prod", 2, 2000, priority=10, cpu_usage=500), job("batch", 6, 2000, priority=2, cpu_usage=900)]
    cp = checkpoint(trace(machines(8), jobs))
    one = reclaim(cp, ["hybrid", "best-fit"], SEEDS, workers=1)
    assert reclaim(cp, ["hybrid", "best-fit"], SEEDS, workers=2) == one == reclaim(cp, ["hybrid", "best-fit"], SEEDS)
    figures = one["policies"]["hybrid"]
    assert all(r < k for r, k in zip(figures["reclaimed"]["min_machines"], figures["limit"]["min_machines"]))
