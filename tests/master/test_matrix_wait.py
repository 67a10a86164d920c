"""MatrixWait: the machine queues' expected wait from the wait-time matrix, hand-computed."""

from __future__ import annotations

from corral.master.matrix_wait import MatrixWait
from corral.master.queue_placement import MachineQueueConfig
from corral.master.queue_wait import RuntimeWait
from corral.model.resources import Resources
from corral.sched.request import TaskRequest

from tests.master.helpers import Harness

GIB = 2**30
ONE = TaskRequest(Resources(cpu=1000, memory=GIB))  # 1 core × 1 GiB: the matrix's first bucket


def full_machine(**fields) -> Harness:
    """m1 (4 cpu, 8 GiB) full with one 4-cpu task, 30 s into its run."""
    h = Harness(machine_queues=MachineQueueConfig(enabled=True, max_length=2))
    h.machine("m1", cpu="4", memory="8Gi")
    h.submit("a", cpu="4", memory="1Gi", **fields)
    h.schedule()
    h.clock.advance(30)
    return h


def test_the_wait_is_the_running_task_estimated_time_left_then_the_queue_ahead():
    h = full_machine(expected_runtime=100)
    wait = MatrixWait(h.state, h.clock)
    assert wait("m1", ONE) == 70.0  # a ends 100 s after its start, 30 s ago
    h.submit("b", cpu="4", memory="1Gi", expected_runtime=50)
    h.schedule()  # fits nowhere: queued on m1, starts when a ends and holds all 4 cpus for 50 s
    assert list(h.state.machine_queues.copies(h.task("b").name)) == ["m1"]
    assert wait("m1", ONE) == 70.0 + 50.0
    assert wait("m1", ONE, until=h.task("b").name) == 70.0  # b's own wait where it stands
    assert wait.matrix(["m1"]).row("m1")[0][0] == 120.0
    assert wait("nowhere", ONE) == float("inf")


def test_without_any_estimate_it_answers_as_runtime_wait():
    h = full_machine()
    assert MatrixWait(h.state, h.clock)("m1", ONE) == RuntimeWait(h.state, h.clock)("m1", ONE) == 30.0


def test_the_core_queues_by_it_by_default():
    h = full_machine(expected_runtime=100)
    assert isinstance(h.core.machine_queues.expected_wait, MatrixWait)
    h.submit("b", cpu="1", memory="1Gi")
    h.schedule()
    copy = h.state.machine_queues.copy(h.task("b").name, "m1")
    assert copy is not None and copy.expected_wait_s == 70.0
