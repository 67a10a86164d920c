import pytest

from corral.sched.cellview import CellView
from corral.sched.checkers import ConstraintsHold
from corral.sched.testing import context, machine, request

CELL = [machine("a", rack="r1", ssd="true"), machine("b", rack="r2"), machine("c", rack="r7", ssd="false")]

CASES = [
    ("equality keeps machines with that value", ("rack == r1",), [True, False, False]),
    ("inequality excludes one rack", ("rack != r7",), [True, True, False]),
    ("inequality keeps machines that lack the attribute", ("zone != z1",), [True, True, True]),
    ("membership keeps any listed value", ("rack in (r1,r7)",), [True, False, True]),
    ("exclusion drops every listed value", ("rack not_in (r1,r7)",), [False, True, False]),
    ("exists needs the attribute, whatever its value", ("ssd exists",), [True, False, True]),
    ("not_exists needs it absent", ("ssd not_exists",), [False, True, False]),
    ("an unknown value matches nothing", ("rack == r99",), [False, False, False]),
    ("several constraints must all hold", ("ssd exists", "rack != r7"), [True, False, False]),
]


@pytest.mark.parametrize("case, constraints, expected", CASES, ids=[c[0] for c in CASES])
def test_constraints_hold(case, constraints, expected):
    ctx = context(CellView(CELL), request(constraints=constraints))
    assert ConstraintsHold().check(ctx).tolist() == expected


def test_each_rejected_machine_is_blamed_on_the_first_constraint_it_fails():
    req = request(constraints=("ssd exists", "rack != r7"))
    ctx = context(CellView(CELL), req)
    reasons = ConstraintsHold().reasons(ctx, ~ConstraintsHold().check(ctx))
    assert reasons == {"constraint ssd exists": 1, "constraint rack!=r7": 1}
