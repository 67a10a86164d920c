"""Dynamic ports: the checker counts free ports of the dynamic range, the scheduler picks them."""

from corral.model.ports import DYNAMIC_PORTS, named, pick_free
from corral.model.resources import Resources
from corral.sched.cellview import CellView, PlacementError
from corral.sched.checkers import PortsFree
from corral.sched.checkers.ports import pick_ports
from corral.sched.request import PendingTask, PlacedTask, TaskRequest
from corral.sched.scheduler import Scheduler
from corral.sched.testing import context, machine

import pytest


def dyn(n: int, fixed: tuple[int, ...] = ()) -> TaskRequest:
    return TaskRequest(Resources(cpu=100, memory=1 << 20, ports=fixed, dynamic_ports=n))


def test_the_scheduler_picks_the_lowest_free_ports_and_never_gives_one_twice_on_a_machine():
    view = CellView([machine("a")])
    pending = [PendingTask(f"{i}.web.alice.local", "web.alice", "alice", dyn(2), i) for i in range(3)]
    plan = Scheduler().schedule(view, pending)
    ports = [p.ports for p in plan.placements]
    assert ports == [(31000, 31001), (31002, 31003), (31004, 31005)]
    assert view.ports[0] == set(range(31000, 31006))


def test_ports_of_a_removed_task_are_free_again():
    view = CellView([machine("a")])
    req = dyn(1)
    view.place(PlacedTask("t0", "web", "alice", req, ports=pick_ports(view, 0, req)), 0)
    assert view.ports[0] == {31000}
    view.remove("t0")
    assert view.ports[0] == set()
    assert pick_ports(view, 0, req) == (31000,)


def test_a_machine_whose_dynamic_range_is_full_is_ruled_out_with_a_reason():
    view = CellView([machine("a"), machine("b")])
    view.ports[0].update(DYNAMIC_PORTS)  # a machine whose whole range is held
    ctx = context(view, dyn(1))
    ok = PortsFree().check(ctx)
    assert ok.tolist() == [False, True]
    assert PortsFree().reasons(ctx, ~ok) == {"fewer than 1 free dynamic ports": 1}


def test_a_fixed_port_inside_the_range_is_not_also_picked_as_a_dynamic_one():
    assert pick_free(set(), (31000,), 2) == (31001, 31002)
    assert pick_free(set(range(31000, 32767)), (), 2) is None


def test_the_view_refuses_a_placement_without_its_dynamic_ports_or_with_a_taken_one():
    view = CellView([machine("a")])
    req = dyn(1)
    with pytest.raises(PlacementError, match="dynamic ports"):
        view.place(PlacedTask("t0", "web", "alice", req), 0)
    view.place(PlacedTask("t0", "web", "alice", req, ports=(31000,)), 0)
    with pytest.raises(PlacementError, match="port it needs is taken"):
        view.place(PlacedTask("t1", "web", "alice", req, ports=(31000,)), 0)


def test_names_pair_with_fixed_and_picked_ports_in_spec_order():
    assert named({"http": 0, "admin": 8081, "grpc": 0}, (31000, 31001)) == {"http": 31000, "admin": 8081, "grpc": 31001}
