from experiment_cells import GiB, job, machines

from corral.sim.experiments.pack import fits, refused


def test_the_master_places_what_fits_and_leaves_the_rest_pending():
    # 3 machines of 4 cores hold one 3-core task each; the fourth stays pending.
    result = fits(machines(3), [job("big", 4, 3000)], "hybrid", 0, placement=True)
    assert (result.placed, result.pending) == (3, 1)
    assert sorted(sum(c.values()) for c in result.placement.values()) == [1, 1, 1]
    # 3 registrations, 1 submission, 3 placements.
    assert result.events == 7


def test_higher_priority_work_is_placed_first_whatever_the_arrival_order():
    jobs = [job("batch", 1, 3000, priority=2, arrival=0), job("prod", 1, 3000, priority=9, arrival=1)]
    result = fits(machines(1), jobs, "best-fit", 0, placement=True)
    assert result.pending == 1
    assert list(result.placement["m000"]) == ["prod.alice"]


def test_jobs_the_master_refuses_are_named_with_the_reason():
    assert refused([job("ok", 1, 1000), job("huge", 100_001, 1)]) == {
        "huge.alice": "tasks: expected less than or equal to 100000, got 100001"}


def test_memory_counts_too():
    result = fits(machines(2, memory=4 * GiB), [job("fat", 3, 100, memory=3 * GiB)], "worst-fit", 1)
    assert (result.placed, result.pending) == (2, 1)
