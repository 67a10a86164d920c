"""Dominant Resource Fairness as the scheduler's queue order: the paper's example and cases worked by hand."""

from collections import Counter

import pytest

from corral.sched.cellview import CellView
from corral.sched.queue import make_user_order
from corral.sched.request import PendingTask
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.shares import Group, ShareConfig, SharesError
from corral.sched.testing import machine, occupy, request


def _tasks(user: str, req, count: int, job: str | None = None, priority_job_time: float = 0.0):
    job = job or f"{user}-job"
    return [PendingTask(f"{job}/{i}", job, user, req, i, priority_job_time) for i in range(count)]


def _placed(cell, work, order="drf", shares=None, view=None, slack=0.0):
    view = view or CellView(cell)
    config = SchedulerConfig(queue_order=order, fair_share_slack=slack, preemption=False)
    plan = Scheduler(config, shares=shares).schedule(view, work)
    users = {t.id: t.user for t in work}
    return Counter(users[p.task_id] for p in plan.placements)


def test_the_drf_papers_example_gives_a_three_tasks_and_b_two():
    # Ghodsi et al. 2011, §4: 9 CPUs, 18 GiB; A's tasks <1 CPU, 4 GiB>, B's <3 CPUs, 1 GiB>.
    cell = [machine("m0", cpu=9, memory_gib=18)]
    work = _tasks("A", request(cpu=1, memory_gib=4), 10) + _tasks("B", request(cpu=3, memory_gib=1), 10)
    assert _placed(cell, work) == {"A": 3, "B": 2}


def test_round_robin_stays_available_by_name_and_gives_a_different_answer_on_the_papers_example():
    cell = [machine("m0", cpu=9, memory_gib=18)]
    work = _tasks("A", request(cpu=1, memory_gib=4), 10) + _tasks("B", request(cpu=3, memory_gib=1), 10)
    assert _placed(cell, work, order="round-robin") == {"A": 4, "B": 1}


def test_the_papers_example_holds_with_the_default_slack_too():
    cell = [machine("m0", cpu=9, memory_gib=18)]
    work = _tasks("A", request(cpu=1, memory_gib=4), 10) + _tasks("B", request(cpu=3, memory_gib=1), 10)
    assert _placed(cell, work, slack=SchedulerConfig().fair_share_slack) == {"A": 3, "B": 2}


def test_a_user_with_weight_two_gets_twice_the_dominant_share():
    # 12 slots of <1, 1>: A (weight 2) at 8/12/2 = 1/3 meets B (weight 1) at 4/12 = 1/3.
    cell = [machine("m0", cpu=12, memory_gib=12)]
    work = _tasks("A", request(cpu=1, memory_gib=1), 20) + _tasks("B", request(cpu=1, memory_gib=1), 20)
    shares = ShareConfig(weights={"A": 2})
    assert _placed(cell, work, shares=shares) == {"A": 8, "B": 4}


def test_groups_share_first_between_them_then_between_their_users():
    # Flat DRF would give 4 each. research (alice, carol) and bob (a group of one) split 6/6,
    # then alice and carol split research's 6 into 3/3.
    cell = [machine("m0", cpu=12, memory_gib=12)]
    req = request(cpu=1, memory_gib=1)
    work = _tasks("alice", req, 20) + _tasks("bob", req, 20) + _tasks("carol", req, 20)
    assert _placed(cell, work) == {"alice": 4, "bob": 4, "carol": 4}
    shares = ShareConfig(groups={"research": Group(1.0, ("alice", "carol"))})
    assert _placed(cell, work, shares=shares) == {"alice": 3, "bob": 6, "carol": 3}


def test_group_and_user_weights_compose():
    # research weight 2: 8 vs bob's 4 (8/12/2 = 4/12); inside it alice weight 3: 6 vs carol's 2.
    cell = [machine("m0", cpu=12, memory_gib=12)]
    req = request(cpu=1, memory_gib=1)
    work = _tasks("alice", req, 20) + _tasks("bob", req, 20) + _tasks("carol", req, 20)
    shares = ShareConfig(weights={"alice": 3}, groups={"research": Group(2.0, ("alice", "carol"))})
    assert _placed(cell, work, shares=shares) == {"alice": 6, "bob": 4, "carol": 2}


def test_running_tasks_count_towards_a_users_share():
    # bob already runs 4 of the 12 slots: alice catches up to 6 before bob gets 2 more.
    cell = [machine("m0", cpu=12, memory_gib=12)]
    req = request(cpu=1, memory_gib=1)
    view = CellView(cell)
    for i in range(4):
        occupy(view, "m0", req, f"old/{i}", user="bob")
    work = _tasks("alice", req, 20) + _tasks("bob", req, 20)
    assert _placed(cell, work, view=view) == {"alice": 6, "bob": 2}


def test_a_higher_band_is_served_first_whatever_the_shares():
    cell = [machine("m0", cpu=4, memory_gib=4)]
    work = _tasks("alice", request(priority=9), 4, "prod") + _tasks("bob", request(priority=2), 4, "batch")
    assert _placed(cell, work) == {"alice": 4}


def test_a_turn_is_split_where_the_user_stops_being_the_lowest():
    # Task-by-task DRF alternates between equal users; long runs are cut at the crossing.
    cell = [machine("m0", cpu=64, memory_gib=64)]
    req = request(cpu=1, memory_gib=1)
    work = _tasks("a", req, 8) + _tasks("b", req, 8)
    view = CellView(cell)
    order = make_user_order("drf")
    from corral.sched.queue import queue_order

    seen = []
    for run in queue_order(work, 16, order, view):
        for task in run:
            occupy(view, "m0", req, task.id, user=task.user)
            seen.append(task.user)
    assert seen == ["a", "b"] * 8


def test_drf_needs_the_view():
    from corral.sched.queue import queue_order

    with pytest.raises(ValueError, match="view"):
        list(queue_order(_tasks("a", request(), 1), 16, make_user_order("drf")))


def test_an_unknown_order_names_the_known_ones():
    with pytest.raises(ValueError, match="drf, round-robin"):
        make_user_order("fifo")


@pytest.mark.parametrize("data, message", [
    ({"users": {"alice": 0}}, "shares.users.alice: expected a weight > 0"),
    ({"users": ["alice"]}, "shares.users: expected a mapping"),
    ({"groups": {"g": {"weight": 1}}}, "shares.groups.g.users: expected a non-empty list"),
    ({"groups": {"g": {"users": ["a"], "colour": 1}}}, "unknown key 'colour'"),
    ({"groups": {"g": {"users": ["a"]}, "h": {"users": ["a"]}}}, "user 'a' is in both 'g' and 'h'"),
    ({"weights": {}}, "shares: unknown key 'weights'"),
    ("alice", "shares: expected a mapping"),
])
def test_bad_share_configuration_names_the_field(data, message):
    with pytest.raises(SharesError, match=message):
        ShareConfig.parse(data)


def test_share_configuration_parses_weights_and_groups():
    config = ShareConfig.parse({"users": {"alice": 2}, "groups": {"research": {"weight": 3, "users": ["alice", "carol"]}}})
    assert config.weight("alice") == 2 and config.weight("bob") == 1
    assert config.group_of("carol") == "research" and config.group_of("bob") is None
    assert config.groups["research"].weight == 3
