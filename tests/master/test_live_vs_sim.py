"""The live master and the simulator run one scheduling path: the same commands give the same event log.

A trace is replayed by the simulator (virtual clock, simulated agents), with a machine loss and clock
ticks injected. Every command the simulator's master core handles and every round it runs is recorded
with its simulated time; the same stream then drives the live ``Master`` (memory store, manual clock,
no threads): commands through ``execute``, rounds through ``schedule_once``. The two logs must be equal,
event for event, and a second simulation with the same seed must log the same events again.
"""

from __future__ import annotations

from typing import Any

from corral.master.clock import ManualClock
from corral.master.commands import MachineDown, Tick
from corral.master.core import MasterCore
from corral.master.service import Master
from corral.sched.scheduler import Scheduler, SchedulerConfig
from corral.sim.replay import Replay, ReplayConfig, plan_ids
from corral.sim.trace import Trace, TraceJob, TraceMachine
from corral.store.memory import MemoryStore

GI = 2**30
SEED = 7


def trace() -> Trace:
    machines = [TraceMachine(f"m{i}", 4000, 8 * GI, attributes=(("rack", f"r{i % 2}"),)) for i in range(3)]
    jobs = [
        TraceJob("web", "alice", 0.0, 1000, GI, tasks=4, priority=9),  # a service: runs until the end
        TraceJob("etl", "bob", 1.0, 2000, 2 * GI, tasks=3, duration=20.0),
        TraceJob("sweep", "carol", 2.0, 1000, GI, tasks=8, duration=5.0, priority=3),
        TraceJob("huge", "carol", 3.0, 4000, 4 * GI, tasks=2, duration=10.0, priority=4),
        TraceJob("tmp", "alice", 4.0, 500, GI, tasks=2, departure=30.0),
        TraceJob("late", "bob", 40.0, 3000, GI, tasks=2, duration=5.0, priority=10),  # preempts batch
    ]
    return Trace("live-vs-sim", machines, jobs)


def simulate() -> tuple[list[dict[str, Any]], list[tuple[float, Any]]]:
    """The simulator's event log and the stream of (time, command or "round") its core saw."""
    sim = Replay(trace(), ReplayConfig(seed=SEED, round_interval_s=1.0))
    sim.log = []
    stream: list[tuple[float, Any]] = []
    handle, schedule = sim.core.handle, sim.core.schedule

    def recording_handle(cmd):
        stream.append((sim.engine.now, cmd))
        return handle(cmd)

    def recording_schedule(*args, **kwargs):
        stream.append((sim.engine.now, "round"))
        return schedule(*args, **kwargs)

    sim.core.handle, sim.core.schedule = recording_handle, recording_schedule
    sim.setup()
    sim.engine.at(12.0, lambda: sim.command(MachineDown("m1", "the test cut it off", id=sim.ids())))
    for t in (15.0, 25.0, 35.0):
        sim.engine.at(t, lambda: sim.command(Tick(id=sim.ids())))
    sim.engine.run(until=80.0)
    return sim.log, stream


def live(stream: list[tuple[float, Any]]) -> list[dict[str, Any]]:
    clock = ManualClock(0.0)
    core = MasterCore(clock=clock, cell="sim", validate=True, ids=plan_ids(SEED),
                      scheduler=Scheduler(SchedulerConfig(seed=SEED)))
    store = MemoryStore()
    master = Master(core, store)  # not started: no scheduler thread, no ticker
    for t, item in stream:
        clock.t = t
        if item == "round":
            master.schedule_once()
        else:
            master.execute(item)
    return list(store.read_since(0))


def test_the_live_master_and_the_simulator_log_the_same_events_for_the_same_commands():
    sim_log, stream = simulate()
    kinds = {type(item).__name__ for _, item in stream if item != "round"}
    assert {"RegisterMachine", "Submit", "AgentReport", "Kill", "MachineDown", "Tick"} <= kinds
    assert sum(1 for _, item in stream if item == "round") >= 5
    vias = {e.get("via") for e in sim_log if e["type"] == "task_ended"}
    assert {"finish", "evict"} <= vias  # tasks ended and were preempted
    assert {"machine_lost", "job_killed"} <= {e["type"] for e in sim_log}
    live_log = live(stream)
    assert len(live_log) == len(sim_log) > 50
    for ours, theirs in zip(live_log, sim_log):
        assert ours == theirs


def test_two_simulations_with_the_same_seed_write_identical_event_logs():
    first, _ = simulate()
    second, _ = simulate()
    assert first == second
    assert all(e["cmd"].startswith(f"s{SEED}") for e in first)
