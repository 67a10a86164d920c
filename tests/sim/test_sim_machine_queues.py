"""The simulator's agents run Apollo's machine queues as live agents do: a queued copy starts the moment
room frees on its machine (no scheduling round in between), the first copy to start wins and the
others are cancelled, and conservation holds throughout (Replay.check with validate)."""

from __future__ import annotations

from corral.master.queue_placement import MachineQueueConfig
from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace, TraceJob, TraceMachine, sort_jobs

GiB = 1 << 30
QUEUES = MachineQueueConfig(enabled=True, max_length=4)


def burst(machines: int = 2, tasks: int = 8, priority: int = 2) -> Trace:
    """Each machine holds two tasks; ``tasks`` ten-second tasks arrive at once."""
    return Trace("burst", [TraceMachine(f"m{i}", 2000, 8 * GiB) for i in range(machines)],
                 sort_jobs([TraceJob("b", "u1", 0.0, 1000, GiB, tasks=tasks, duration=10.0, priority=priority,
                                     appclass="batch")]))


def run(trace: Trace, **config):
    r = Replay(trace, ReplayConfig(validate=True, **config))
    r.log = []
    return r, r.run()  # run() ends with Replay.check


def starts(r: Replay) -> list[tuple[float, str, str]]:
    return sorted((e["t"], e["task"], e["machine"]) for e in r.log if e["type"] == "task_scheduled")


def test_queued_tasks_start_the_moment_room_frees_not_at_the_next_round():
    r, result = run(burst(), round_interval_s=5.0, machine_queues=QUEUES)
    assert result.summary["finished"] == 8 and result.summary["started_from_queue"] == 4
    times = [t for t, _, _ in starts(r)]
    # four start in the first round (at 5 s), four from the queues as the first four end (at 15 s exactly);
    # without queues they would wait for the round after 15 s
    assert times == [5.0] * 4 + [15.0] * 4
    assert any(e["type"] == "task_queued" for e in r.log)
    assert r.agents.queued == {} and r.core.state.machine_queues.by_task == {}


def test_without_queues_the_freed_room_waits_for_a_round():
    r, result = run(burst(), round_interval_s=5.0)
    times = [t for t, _, _ in starts(r)]
    assert times[:4] == [5.0] * 4 and min(times[4:]) > 15.0
    assert "started_from_queue" not in result.summary


def test_production_work_never_waits_in_a_machine_queue():
    r, result = run(burst(priority=9), round_interval_s=5.0, machine_queues=QUEUES)
    assert not [e for e in r.log if e["type"] == "task_queued"]
    assert result.summary["finished"] == 8


def test_a_moved_copy_races_the_first_one_wins_and_the_other_is_cancelled():
    # Machine m0 is busy for 100 s; m1 frees after 10 s. With a long queue wait estimate the master
    # duplicates the copy queued behind m0 onto m1 (move_min_s small), whichever starts first wins.
    machines = [TraceMachine("m0", 2000, 8 * GiB), TraceMachine("m1", 2000, 8 * GiB)]
    jobs = sort_jobs([
        TraceJob("long", "u1", 0.0, 2000, GiB, tasks=1, duration=100.0, appclass="batch"),
        TraceJob("short", "u1", 0.0, 2000, GiB, tasks=1, duration=10.0, appclass="batch"),
        TraceJob("late", "u2", 2.0, 2000, GiB, tasks=3, duration=5.0, appclass="batch"),
    ])
    config = MachineQueueConfig(enabled=True, max_length=4, move_factor=1.01, average_factor=1.01, move_min_s=1.0)
    r, result = run(Trace("race", machines, jobs), round_interval_s=1.0, tick_interval_s=1.0, machine_queues=config)
    state = r.core.state
    assert all(state.jobs[j].state.value == "succeeded" for j in state.jobs)
    assert max(r.finishes.values()) == 1 and len(r.finishes) == 5  # each task counted finished once
    assert r.agents.running == {} and r.agents.queued == {}
    assert (state.view.free == state.view.capacity).all()  # every cancelled copy's room came back
    moved = "2.late.u2.sim"  # queued behind m0's long task, then duplicated onto m1 where room freed first
    assert sorted(e["machine"] for e in r.log if e["type"] == "task_queued" and e["task"] == moved) == ["m0", "m1"]
    assert [e["machine"] for e in r.log if e["type"] == "task_scheduled" and e["task"] == moved] == ["m1"]
    assert result.summary["started_from_queue"] == 2  # 1.late and the moved copy, each when m1 freed
    assert result.summary["cancelled_in_queue"] >= 1  # the moved task's copy behind m0 left that queue


def test_machine_queues_are_deterministic():
    a, ra = run(burst(machines=3, tasks=20), machine_queues=QUEUES, tick_interval_s=1.0)
    b, rb = run(burst(machines=3, tasks=20), machine_queues=QUEUES, tick_interval_s=1.0)
    assert a.log == b.log and ra.summary == rb.summary
