from corral.sched.cellview import CellView
from corral.sched.checkers import PortsFree
from corral.sched.testing import context, machine, occupy, request


def test_a_port_taken_on_one_machine_rules_out_only_that_machine():
    view = CellView([machine("a"), machine("b")])
    occupy(view, "a", request(ports=(8080,)), "web/0")
    ctx = context(view, request(ports=(8080, 9090)))
    assert PortsFree().check(ctx).tolist() == [False, True]
    assert PortsFree().reasons(ctx, ~PortsFree().check(ctx)) == {"port 8080 in use": 1}


def test_ports_are_given_back_when_the_task_leaves():
    view = CellView([machine("a")])
    occupy(view, "a", request(ports=(8080,)), "web/0")
    view.remove("web/0")
    assert PortsFree().check(context(view, request(ports=(8080,)))).tolist() == [True]
