import pytest

from corral.sched.cellview import CellView
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sched.testing import machine, occupy, pending, request


def _one_pass(cell, running, req, **config):
    view = CellView(cell)
    for name, task_id, other in running:
        occupy(view, name, other, task_id)
    plan = Scheduler(SchedulerConfig(**config)).schedule(view, pending(req, job="new", user="carol"))
    return view, plan


FULL_BATCH = request(cpu=8, memory_gib=8, priority=2)
OPPORTUNISTIC = request(cpu=4, priority=0, opportunistic=True)  # beyond its user's quota

CASES = [
    ("a production task evicts batch work from a full machine",
     [machine("m0")], [("m0", "batch/0", FULL_BATCH)], request(cpu=4, priority=10), ["batch/0"]),
    ("production never evicts production",
     [machine("m0")], [("m0", "prod/0", request(cpu=8, priority=9))], request(cpu=4, priority=10), []),
    ("a task never evicts its own priority",
     [machine("m0")], [("m0", "batch/0", FULL_BATCH)], request(cpu=4, priority=2), []),
    ("best-effort work cannot preempt",
     [machine("m0")], [("m0", "be/0", request(cpu=8, priority=0))], request(cpu=4, priority=1), []),
    ("monitoring may evict production",
     [machine("m0")], [("m0", "prod/0", request(cpu=8, priority=10))], request(cpu=4, priority=11), ["prod/0"]),
    ("the lowest priority goes first and the rest are spared",
     [machine("m0")],
     [("m0", "b4/0", request(cpu=4, priority=4)), ("m0", "b2/0", request(cpu=4, priority=2))],
     request(cpu=4, priority=9), ["b2/0"]),
    ("the machine with the fewest victims wins",
     [machine("many"), machine("one")],
     [("many", "small/0", request(cpu=2, priority=2)), ("many", "small/1", request(cpu=2, priority=2)),
      ("many", "small/2", request(cpu=2, priority=2)), ("many", "small/3", request(cpu=2, priority=2)),
      ("one", "big/0", request(cpu=8, priority=2))],
     request(cpu=6, priority=9), ["big/0"]),
    ("cheaper victims win over fewer expensive ones when counts tie",
     [machine("hi"), machine("lo")],
     [("hi", "b8/0", request(cpu=8, priority=8)), ("lo", "b3/0", request(cpu=8, priority=3))],
     request(cpu=6, priority=9), ["b3/0"]),
    ("an opportunistic task goes before a best-effort one",
     [machine("m0")], [("m0", "be/0", request(cpu=4, priority=0)), ("m0", "opp/0", OPPORTUNISTIC)],
     request(cpu=4, priority=9), ["opp/0"]),
    ("an opportunistic task goes before a batch one of a lower priority than the preemptor",
     [machine("m0")], [("m0", "b2/0", request(cpu=4, priority=2)), ("m0", "opp/0", OPPORTUNISTIC)],
     request(cpu=4, priority=5), ["opp/0"]),
    ("a machine of opportunistic victims wins over one with fewer regular victims",
     [machine("one"), machine("many")],
     [("one", "big/0", request(cpu=8, priority=2)), ("many", "opp/0", OPPORTUNISTIC), ("many", "opp/1", OPPORTUNISTIC)],
     request(cpu=6, priority=9), ["opp/0", "opp/1"]),
    ("best-effort work evicts opportunistic tasks and nothing else",
     [machine("m0")], [("m0", "be/0", request(cpu=4, priority=0)), ("m0", "opp/0", OPPORTUNISTIC)],
     request(cpu=4, priority=1), ["opp/0"]),
    ("best-effort work cannot evict a regular best-effort task for room opportunistic tasks lack",
     [machine("m0")], [("m0", "be/0", request(cpu=6, priority=0)), ("m0", "opp/0", request(cpu=2, priority=0, opportunistic=True))],
     request(cpu=4, priority=1), []),
    ("an opportunistic task preempts nothing",
     [machine("m0")], [("m0", "be/0", request(cpu=8, priority=0))], request(cpu=4, priority=0, opportunistic=True), []),
]


@pytest.mark.parametrize("case, cell, running, req, victims", CASES, ids=[c[0] for c in CASES])
def test_preemption(case, cell, running, req, victims):
    view, plan = _one_pass(cell, running, req)
    assert sorted(p.victim for p in plan.preemptions) == victims
    if victims:
        assert [p.task_id for p in plan.placements] == ["new/0"]
        assert all(v not in view.where for v in victims)
        assert all("preempted" in p.reason and "new/0" in p.reason for p in plan.preemptions)
    else:
        assert "new/0" in plan.unplaced


def test_preemption_can_be_switched_off():
    _, plan = _one_pass([machine("m0")], [("m0", "batch/0", FULL_BATCH)], request(cpu=4, priority=10), preemption=False)
    assert not plan.preemptions and "new/0" in plan.unplaced
    assert "Preemption is off" in plan.unplaced["new/0"].summary()


def test_a_gpu_task_evicts_the_task_holding_the_gpu_it_needs():
    cell = [machine("g", gpus=1, gpu_model="T4")]
    view, plan = _one_pass(cell, [], request(cpu=1, gpu=1, priority=9))
    assert [p.task_id for p in plan.placements] == ["new/0"]  # free GPU: no eviction needed
    view = CellView(cell)
    occupy(view, "g", request(cpu=1, gpu=1, priority=3), "train/0", gpus=(0,))
    plan = Scheduler().schedule(view, pending(request(cpu=1, gpu=1, priority=9), job="new"))
    assert [p.victim for p in plan.preemptions] == ["train/0"]
    assert plan.placements[0].gpus == (0,)


def test_tasks_placed_earlier_in_the_same_pass_are_not_victims():
    view = CellView([machine("m0")])
    work = pending(request(cpu=8, priority=8), job="first") + pending(request(cpu=8, priority=9), job="second")
    plan = Scheduler().schedule(view, work)
    # Production goes first (band order); the batch task then finds no room and evicts nothing.
    assert [p.task_id for p in plan.placements] == ["second/0"]
    assert not plan.preemptions and "first/0" in plan.unplaced
