from corral.sched.cellview import CellView
from corral.sched.scheduler import Scheduler
from corral.sched.testing import machine, pending, request


def test_an_unplaceable_task_gets_one_sentence_naming_each_reason_with_counts():
    cell = [machine("a", memory_gib=4, rack="r1"), machine("b", memory_gib=4, rack="r2"), machine("c", memory_gib=64, rack="r7")]
    plan = Scheduler().schedule(CellView(cell), pending(request(memory_gib=16, constraints=("rack != r7",), priority=0)))
    explanation = plan.unplaced["job/0"]
    assert explanation.summary() == (
        "0/3 machines are available: 2 insufficient memory, 1 constraint rack!=r7. "
        "Priority 0 (best-effort) cannot preempt."
    )
    record = explanation.to_dict()
    assert record["evaluated"] == 3
    assert record["filtered"] == {"constraint rack!=r7": 1}
    assert record["exhausted"] == {"insufficient memory": 2}


def test_every_task_of_an_unplaceable_class_gets_the_explanation():
    plan = Scheduler().schedule(CellView([machine("a", cpu=1)]), pending(request(cpu=2), count=5))
    assert sorted(plan.unplaced) == [f"job/{i}" for i in range(5)]
