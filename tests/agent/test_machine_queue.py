"""The machine queue under the sans-IO supervisor: queued launches start the moment room frees."""

from __future__ import annotations

from corral.agent import machine_queue
from corral.agent import supervisor as sv
from corral.agent.launch import parse_launch

from tests.agent.test_supervisor import FakeClock, spawns

GiB = 2**30
CAPACITY = {"cpu": 2000, "memory": 4 * GiB}


def launch(task_id: str, cpu: int = 1000, memory: int = GiB, queued: bool = False, generation: int = 1):
    return parse_launch({"task_id": task_id, "generation": generation, "command": "sleep", "args": ["60"],
                         "resources": {"cpu": cpu, "memory": memory}, "queued": queued,
                         "restart": {"max_failures": 3, "backoff_s": 1}})


def agent(capacity=CAPACITY):
    clock = FakeClock()
    return clock, sv.Supervisor(clock, kill_grace_s=5.0, validate=True, capacity=capacity)


def run(m: sv.Supervisor, task_id: str, pid: int, **fields) -> int:
    (spawn,) = spawns(m.handle(sv.Launch(launch(task_id, **fields))))
    m.handle(sv.Started(task_id, spawn.attempt, pid))
    return spawn.attempt


def test_a_queued_task_waits_while_the_machine_is_full_and_starts_in_the_same_step_as_the_exit_that_frees_room():
    clock, m = agent()
    a = run(m, "a", 100)
    run(m, "b", 101)
    assert m.handle(sv.Launch(launch("q", queued=True))) == []
    assert m.tasks["q"].state == sv.QUEUED and m.queue == ["q"]
    clock.now += 30
    out = m.handle(sv.Exited("a", a, 0))
    assert [(s.task_id, s.launch.generation) for s in spawns(out)] == [("q", 1)]
    assert m.tasks["a"].state == sv.FINISHED and m.tasks["q"].state == sv.STARTING and m.queue == []
    assert "started from the machine queue" in m.tasks["q"].story[-1][3]


def test_a_queued_launch_that_fits_now_starts_at_once():
    _, m = agent()
    run(m, "a", 100)
    (spawn,) = spawns(m.handle(sv.Launch(launch("q", queued=True))))
    assert spawn.task_id == "q" and m.tasks["q"].state == sv.STARTING


def test_the_queue_is_first_come_first_served_a_big_head_is_not_overtaken():
    _, m = agent()
    a = run(m, "a", 100)
    b = run(m, "b", 101)
    m.handle(sv.Launch(launch("big", cpu=2000, queued=True)))
    m.handle(sv.Launch(launch("small", cpu=500, queued=True)))
    assert spawns(m.handle(sv.Exited("a", a, 0))) == []  # 1000m free: small would fit, but big is first
    assert m.queue == ["big", "small"]
    out = m.handle(sv.Exited("b", b, 0))
    assert [s.task_id for s in spawns(out)] == ["big"] and m.queue == ["small"]


def test_a_task_in_back_off_holds_its_room():
    clock, m = agent()
    a = run(m, "a", 100)
    run(m, "b", 101)
    m.handle(sv.Launch(launch("q", queued=True)))
    assert spawns(m.handle(sv.Exited("a", a, 1))) == []  # it failed: it will restart in 1 s
    assert m.tasks["a"].state == sv.BACKOFF and m.tasks["q"].state == sv.QUEUED


def test_memory_counts_as_well_as_cpu():
    _, m = agent()
    a = run(m, "a", 100, cpu=100, memory=3 * GiB)
    m.handle(sv.Launch(launch("q", cpu=100, memory=2 * GiB, queued=True)))
    assert m.tasks["q"].state == sv.QUEUED
    assert [s.task_id for s in spawns(m.handle(sv.Exited("a", a, 0)))] == ["q"]


def test_a_cancelled_queued_task_is_killed_without_ever_starting():
    _, m = agent()
    a = run(m, "a", 100, cpu=2000)
    m.handle(sv.Launch(launch("q", queued=True)))
    assert m.handle(sv.Kill("q", "started on m2 first")) == []
    assert m.tasks["q"].state == sv.KILLED and m.queue == []
    assert spawns(m.handle(sv.Exited("a", a, 0))) == []


def test_assignments_that_no_longer_list_a_queued_task_cancel_it_and_keep_the_listed_one():
    _, m = agent()
    run(m, "a", 100, cpu=2000)
    m.handle(sv.Launch(launch("q1", queued=True)), sv.Launch(launch("q2", queued=True)))
    m.handle(sv.Assign(frozenset({"a", "q2"})))
    assert m.tasks["q1"].state == sv.KILLED and m.tasks["q2"].state == sv.QUEUED and m.queue == ["q2"]


def test_the_same_queued_launch_again_is_a_no_op_and_a_direct_launch_starts_it_now():
    _, m = agent()
    run(m, "a", 100, cpu=2000)
    m.handle(sv.Launch(launch("q", queued=True)))
    assert m.handle(sv.Launch(launch("q", queued=True))) == [] and m.queue == ["q"]
    # the master placed it here itself (not queued): it starts at once, out of the queue
    (spawn,) = spawns(m.handle(sv.Launch(launch("q", queued=False))))
    assert spawn.task_id == "q" and m.queue == [] and m.tasks["q"].state == sv.STARTING


def test_after_an_agent_restart_the_queue_is_empty_and_the_masters_resent_launch_queues_it_again():
    # The choice: queued copies are not recorded on disk (survivors.py records started attempts only);
    # the master sends them again (corral.master.assignments.plan_assignments) and the new agent queues
    # them afresh. Running tasks come back through adoption; here one is started again for brevity.
    _, before = agent()
    run(before, "a", 100, cpu=2000)
    before.handle(sv.Launch(launch("q", queued=True)))
    clock, after = agent()  # the restarted agent's supervisor
    assert after.queue == [] and "q" not in after.tasks
    a = run(after, "a", 200, cpu=2000)
    assert after.handle(sv.Launch(launch("q", queued=True))) == [] and after.queue == ["q"]
    assert [s.task_id for s in spawns(after.handle(sv.Exited("a", a, 0)))] == ["q"]


def test_without_a_known_capacity_a_queued_task_starts_only_on_an_empty_machine():
    _, m = agent(capacity=None)
    a = run(m, "a", 100, cpu=10)
    m.handle(sv.Launch(launch("q", cpu=10, queued=True)))
    assert m.tasks["q"].state == sv.QUEUED
    assert [s.task_id for s in spawns(m.handle(sv.Exited("a", a, 0)))] == ["q"]


def test_ready_is_pure_and_starts_a_task_too_big_for_the_machine_only_alone():
    records = {"huge": sv.TaskRecord(launch=launch("huge", cpu=8000, queued=True), state=sv.QUEUED)}
    assert machine_queue.ready(["huge"], records, CAPACITY, sv.HOLDING) == ["huge"]
    records["r"] = sv.TaskRecord(launch=launch("r", cpu=100), state=sv.RUNNING, pid=1)
    assert machine_queue.ready(["huge"], records, CAPACITY, sv.HOLDING) == []
