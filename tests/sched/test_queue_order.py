from corral.sched.queue import queue_order
from corral.sched.request import PendingTask
from corral.sched.testing import request


def _tasks(user, job, count, priority):
    req = request(priority=priority)
    return [PendingTask(f"{job}/{i}", job, user, req, i, submitted=0) for i in range(count)]


def _order(pending, quantum):
    return [t.id for run in queue_order(pending, quantum) for t in run]


def test_bands_go_from_monitoring_down_to_best_effort():
    work = _tasks("a", "be", 1, 0) + _tasks("a", "batch", 1, 5) + _tasks("a", "mon", 1, 11) + _tasks("a", "prod", 1, 9)
    assert _order(work, 16) == ["mon/0", "prod/0", "batch/0", "be/0"]


def test_inside_a_band_users_take_turns_so_a_big_job_does_not_block_others():
    work = _tasks("alice", "big", 100, 4) + _tasks("bob", "small", 2, 4)
    order = _order(work, 4)
    assert order[:4] == ["big/0", "big/1", "big/2", "big/3"]
    assert order[4:6] == ["small/0", "small/1"]
    assert order.index("small/1") < order.index("big/4") + 1


def test_a_users_own_tasks_go_by_priority_inside_the_band():
    work = _tasks("alice", "low", 1, 2) + _tasks("alice", "high", 1, 8)
    assert _order(work, 1) == ["high/0", "low/0"]


def test_runs_hold_tasks_of_one_request_only():
    work = _tasks("alice", "a", 3, 4) + [PendingTask("b/0", "b", "alice", request(cpu=2, priority=4), 0, 0)]
    runs = list(queue_order(work, 16))
    assert [len(r) for r in runs] == [3, 1]
    assert all(len({t.request for t in run}) == 1 for run in runs)
