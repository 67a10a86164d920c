"""Property: whatever is placed and removed, no port of a machine is held by two tasks."""

from hypothesis import given, settings, strategies as st

from corral.model.resources import Resources
from corral.sched.cellview import CellView
from corral.sched.request import PendingTask, TaskRequest
from corral.sched.scheduler import Scheduler
from corral.sched.testing import machine

REQUESTS = [TaskRequest(Resources(cpu=100, memory=1 << 20, ports=fixed, dynamic_ports=n))
            for fixed, n in (((), 1), ((), 2), ((31001,), 1), ((8080,), 0), ((31000,), 0))]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, len(REQUESTS) - 1), st.integers(1, 4)), min_size=1, max_size=12),
       st.integers(0, 2**16))
def test_no_port_of_a_machine_is_ever_held_twice(steps, seed):
    view = CellView([machine("a"), machine("b")])
    scheduler = Scheduler()
    placed: list[str] = []
    n = 0
    for add, which, count in steps:
        if add or not placed:
            pending = [PendingTask(f"t{n + i}", "j", "u", REQUESTS[which], i) for i in range(count)]
            n += count
            plan = scheduler.schedule(view, pending)
            placed += [p.task_id for p in plan.placements]
            assert set(plan.unplaced) | {p.task_id for p in plan.placements} == {t.id for t in pending}
        else:
            view.remove(placed.pop(seed % len(placed)))
        for m in range(len(view)):
            held = [p for task in view.tasks[m].values() for p in task.held_ports]
            assert len(held) == len(set(held)), f"machine {view.names[m]} holds a port twice: {sorted(held)}"
            assert set(held) == view.ports[m]
