import pytest

from corral.sched.cellview import CellView
from corral.sched.checkers import ResourcesFit
from corral.sched.testing import context, machine, occupy, request

CASES = [
    ("a task that fits in free cpu and memory passes", request(cpu=2, memory_gib=4), [], True, None),
    ("a task asking for more cpu than the machine has is rejected for cpu", request(cpu=9, memory_gib=1), [], False, "insufficient cpu"),
    ("a task asking for more memory than is free is rejected for memory", request(cpu=1, memory_gib=40), [], False, "insufficient memory"),
    ("running work counts against what is free", request(cpu=4, memory_gib=1), [request(cpu=6, memory_gib=1)], False, "insufficient cpu"),
    ("a task that exactly fills the machine passes", request(cpu=8, memory_gib=32), [], True, None),
    ("a GPU task on a machine without GPUs is short of gpu", request(gpu=1), [], False, "insufficient gpu"),
]


@pytest.mark.parametrize("case, req, running, fits, reason", CASES, ids=[c[0] for c in CASES])
def test_resources_fit(case, req, running, fits, reason):
    view = CellView([machine("m0", cpu=8, memory_gib=32)])
    for n, other in enumerate(running):
        occupy(view, "m0", other, f"old/{n}")
    ctx = context(view, req)
    assert ResourcesFit().check(ctx).tolist() == [fits]
    if reason:
        assert ResourcesFit().reasons(ctx, ~ResourcesFit().check(ctx)) == {reason: 1}
