"""``movable`` and ``disruption_budget`` in the job spec."""

import pytest

from corral.model.spec import SpecError, parse_job_spec


def spec(**fields):
    return {"name": "j", "user": "alice", "resources": {"cpu": "1", "memory": "1Gi"}, **fields}


@pytest.mark.parametrize("fields, movable", [
    ({}, True),
    ({"priority": 0}, True),
    ({"priority": 9}, False),
    ({"priority": 11}, False),
    ({"appclass": "latency-sensitive"}, False),
    ({"priority": 9, "movable": True}, True),
    ({"movable": False}, False),
])
def test_batch_work_is_movable_by_default_and_production_or_service_is_not(fields, movable):
    assert parse_job_spec(spec(**fields)).may_move is movable


def test_a_budget_is_read_and_an_old_spec_without_one_still_loads():
    s = parse_job_spec(spec(disruption_budget={"max_moving": 2, "max_unavailable_pct": 10}))
    assert s.disruption_budget.max_moving == 2 and s.disruption_budget.max_unavailable_pct == 10
    assert parse_job_spec(spec()).disruption_budget is None


@pytest.mark.parametrize("budget, field", [
    ({}, "disruption_budget"),
    ({"max_moving": -1}, "disruption_budget.max_moving"),
    ({"max_unavailable_pct": 101}, "disruption_budget.max_unavailable_pct"),
    ({"max_moving": "2"}, "disruption_budget.max_moving"),
    ({"max_moving": 1, "surge": 1}, "disruption_budget.surge"),
])
def test_a_bad_budget_is_refused_naming_the_field(budget, field):
    with pytest.raises(SpecError) as err:
        parse_job_spec(spec(disruption_budget=budget))
    assert field in dict(err.value.errors), err.value.errors
