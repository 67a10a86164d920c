from corral.sched.cellview import CellView
from corral.sched.checkers import DomainLimit
from corral.sched.testing import context, machine, occupy, request


def test_a_rack_holding_the_jobs_limit_is_closed_to_the_job_but_not_to_others():
    view = CellView([machine("a", rack="r1"), machine("b", rack="r1"), machine("c", rack="r2")])
    limited = request(max_per_domain=(("rack", 2),), job="web")
    occupy(view, "a", limited, "web/0", job="web")
    occupy(view, "b", limited, "web/1", job="web")
    ctx = context(view, limited)
    assert DomainLimit().check(ctx).tolist() == [False, False, True]
    assert DomainLimit().reasons(ctx, ~DomainLimit().check(ctx)) == {"job already has 2 task(s) in the rack": 2}
    other = request(max_per_domain=(("rack", 2),), job="db")
    assert DomainLimit().check(context(view, other)).tolist() == [True, True, True]


def test_the_limit_is_not_cacheable_per_machine():
    assert DomainLimit.machine_local is False
