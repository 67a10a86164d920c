"""The alloc placement checker and scorer (corral.sched.allocs): table-driven, one sentence per case."""

from __future__ import annotations

import numpy as np
import pytest

from corral.sched.allocs import AllocRoom, check_room, choose, take

Mi = 2**20


def room(index, cpu=2000, memory=1024 * Mi, used=(0, 0), machine="m", waiting=""):
    return AllocRoom(f"{index}.web-allocs.alice.local", f"web-allocs/{index}", index,
                     None if machine is None else f"{machine}{index}",
                     np.array([cpu, memory, 0, 0], dtype=np.int64),
                     np.array([used[0], used[1], 0, 0], dtype=np.int64), waiting)


def need(cpu, memory=0):
    return np.array([cpu, memory, 0, 0], dtype=np.int64)


CHECKS = [
    ("a task that fits the room left is admitted", room(3, used=(1000, 0)), need(1000), None),
    ("cpu short: the room left and the ask, in millicores", room(3, used=(1800, 0)), need(500),
     "alloc web-allocs/3 has 200m cpu left, task asks 500m"),
    ("memory short: in bytes people read", room(1, used=(0, 1000 * Mi)), need(10, 100 * Mi),
     "alloc web-allocs/1 has 24Mi memory left, task asks 100Mi"),
    ("the first dimension short is the reason", room(0, used=(2000, 1024 * Mi)), need(1, 1),
     "alloc web-allocs/0 has 0 cpu left, task asks 1m"),
    ("an alloc not placed yet says so, with its own reason", room(2, machine=None, waiting="0/3 machines are available"),
     need(1), "alloc web-allocs/2 is not placed yet (0/3 machines are available)"),
]


@pytest.mark.parametrize("case,r,n,reason", CHECKS, ids=[c[0] for c in CHECKS])
def test_check_room(case, r, n, reason):
    assert check_room(r, n) == reason


def test_index_placement_puts_task_i_in_alloc_i_or_explains_why_not():
    rooms = [room(0), room(1, used=(1900, 0))]
    assert choose(rooms, need(500), 0).room is rooms[0]
    got = choose(rooms, need(500), 1)
    assert got.room is None and got.reason == "alloc web-allocs/1 has 100m cpu left, task asks 500m"
    got = choose(rooms, need(1), 2, set_name="web-allocs")
    assert got.room is None and got.reason == "alloc set web-allocs has 2 allocs, none for task 2"


CHOICES = [
    ("any: the fullest alloc that still fits (best fit)", [room(0), room(1, used=(1000, 0))], need(500), None, 1),
    ("any: the alloc on the task's last machine first", [room(0), room(1, used=(1000, 0))], need(500), "m0", 0),
    ("any: equal fits go to the lowest index", [room(0), room(1)], need(500), None, 0),
    ("any: an alloc without room is passed over", [room(0, used=(1800, 0)), room(1)], need(500), "m0", 1),
]


@pytest.mark.parametrize("case,rooms,n,prefer,want", CHOICES, ids=[c[0] for c in CHOICES])
def test_any_placement(case, rooms, n, prefer, want):
    assert choose(rooms, n, 0, "any", prefer).room.index == want


def test_any_placement_without_room_says_how_many_allocs_and_why_the_first_refused():
    rooms = [room(0, used=(1800, 0)), room(1, used=(1900, 0))]
    got = choose(rooms, need(500), 0, "any", set_name="web-allocs")
    assert got.room is None
    assert got.reason == ("0/2 allocs of web-allocs have room: alloc web-allocs/0 has 200m cpu left, task asks 500m "
                          "(and 1 more allocs without room)")


def test_take_books_the_room_so_a_second_task_of_the_round_sees_it_gone():
    rooms = [room(0)]
    take(rooms[0], need(1500))
    assert choose(rooms, need(1000), 0).reason == "alloc web-allocs/0 has 500m cpu left, task asks 1"
