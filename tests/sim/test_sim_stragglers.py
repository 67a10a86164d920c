"""The simulator runs the master's straggler copies unchanged: a slowed task's copy wins, the job ends
sooner, and conservation holds with duplicates (each task finished once, the loser's resources back)."""

from __future__ import annotations

from corral.master.commands import StartTask
from corral.sim.agents import SimulatedAgents
from corral.sim.replay import Replay, ReplayConfig
from corral.sim.trace import Trace, TraceJob, TraceMachine, sort_jobs

GiB = 1 << 30
SLOW = "0.sort.u1.sim"  # its first copy runs 10x longer


class SlowFirstCopy(SimulatedAgents):
    """The simulated agents, but the first copy of task 0 runs ten times its trace duration."""

    def duration(self, effect: StartTask, job: TraceJob) -> float | None:
        return job.duration * (10 if effect.task == SLOW else 1)


def replay_with_stragglers(ticks: bool):
    trace = Trace("t", [TraceMachine(f"m{i}", 4000, 16 * GiB) for i in range(3)],
                  sort_jobs([TraceJob("sort", "u1", 0.0, 1000, GiB, tasks=10, duration=10.0)]))
    r = Replay(trace, ReplayConfig(validate=True, tick_interval_s=1.0 if ticks else None))
    r.agents = SlowFirstCopy(r.engine, r._job_of_task, r._report)
    r.core.transport = r.agents
    r.log = []
    r.mid_run = []
    r.engine.after(20.0, lambda: (r.check(), r.mid_run.append(dict(r.core.state.copies))))  # with a copy running
    return r, r.run()  # run() ends with the conservation check (Replay.check)


def test_a_slowed_task_gets_a_copy_that_wins_and_conservation_holds():
    r, result = replay_with_stragglers(ticks=True)
    assert list(r.mid_run[0]) == [SLOW]  # conservation held with the duplicate running (Replay.check)
    types = [(e["type"], e.get("via")) for e in r.log if e.get("task") == SLOW]
    assert ("copy_scheduled", None) in types and ("copy_ended", "won") in types
    assert [t for t in types if t == ("task_ended", "finish")] == [("task_ended", "finish")]  # once
    state = r.core.state
    assert state.jobs["sort.u1"].state.value == "succeeded" and state.copies == {}
    assert (state.view.free == state.view.capacity).all()  # every copy's resources came back
    assert r.agents.running == {}
    ended = state.jobs["sort.u1"].history[-1].t
    assert ended < 40.0  # the slow copy alone would take 100 s


def test_without_ticks_nothing_is_copied_and_the_straggler_sets_the_pace():
    r, result = replay_with_stragglers(ticks=False)
    assert not [e for e in r.log if e["type"].startswith("copy_")]
    assert r.core.state.jobs["sort.u1"].history[-1].t >= 100.0


def test_ticks_and_usage_reports_alone_do_not_keep_a_run_going():
    trace = Trace("t", [TraceMachine("m0", 4000, 16 * GiB)],
                  sort_jobs([TraceJob("a", "u1", 0.0, 1000, GiB, tasks=2, duration=10.0)]))
    r = Replay(trace, ReplayConfig(tick_interval_s=1.0, usage_interval_s=2.0))
    result = r.run()
    assert result.summary["finished"] == 2
    assert 10.0 <= result.summary["simulated_s"] <= 12.0  # stops within an interval of the last finish
    assert r.engine.pending() == 0
