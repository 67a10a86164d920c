"""The master's estimates survive a checkpoint (compaction deletes the events they were learnt from)."""

from __future__ import annotations

import json

from corral.master.commands import AgentReport
from corral.master.core import MasterCore
from corral.master.estimates_codec import request_from_dict, request_to_dict
from corral.master.state import CellState
from corral.store.memory import MemoryStore

from tests.master.helpers import Harness


def report(h: Harness, job: str, index: int, state: str, **more) -> None:
    t = h.task(job, index)
    h.run(AgentReport(t.machine, [{"task_id": t.name, "generation": t.generation, "state": state, **more}]))


def history_before_the_checkpoint(h: Harness) -> None:
    """Runtimes (job, class, history), failures, spec priors, start-up costs on two machines, and two
    tasks still running when the checkpoint is written."""
    h.machine("m1", cpu="8")
    h.machine("m2", cpu="8")
    h.submit("b", tasks=3, cpu="0.5", memory="256Mi", command="sleep")
    h.submit("f", cpu="0.5", memory="256Mi", command="sleep")
    h.submit("c", tasks=2, cpu="1", memory="512Mi", command="run-c", expected_runtime=300,
             constraints=["rack != r9"])
    h.schedule()
    t0 = h.clock.now()
    for i, seconds in enumerate([3.0, 0.5, 0.25]):
        report(h, "b", i, "running", startup_s=seconds)
    report(h, "f", 0, "running", startup_s=1.0)
    report(h, "c", 0, "running", startup_s=7.5)
    for i, runtime in enumerate([10.0, 20.0, 30.0]):
        h.clock.advance(t0 + runtime - h.clock.now())
        report(h, "b", i, "finished", exit_code=0)
    report(h, "f", 0, "failed", exit_code=1, failures=99)  # tried on the other machine (failover) ...
    h.schedule()
    report(h, "f", 0, "running", startup_s=2.0)
    report(h, "f", 0, "failed", exit_code=1, failures=99)  # ... where it fails for good
    h.submit("b", tasks=1, cpu="0.5", memory="256Mi", command="sleep")  # same id again: b's runs become history


def tail_after_the_checkpoint(h: Harness) -> None:
    h.schedule()
    report(h, "b", 0, "running", startup_s=0.75)
    h.clock.advance(40)
    for name in ("b", "c"):
        report(h, name, 0, "finished", exit_code=0)  # c's task started before the checkpoint


def test_a_master_rebuilt_from_a_compacted_checkpoint_and_the_tail_has_the_estimates_of_the_whole_log():
    h = Harness()
    h.store = MemoryStore(compact=True)
    everything = MemoryStore()  # the whole log, never compacted
    run, schedule = h.run, h.schedule

    def both(method):
        def call(*args):
            out = method(*args)
            everything.append([e.to_dict() for e in out.events])
            return out
        return call

    h.run, h.schedule = both(run), both(schedule)
    history_before_the_checkpoint(h)
    h.store.write_checkpoint(h.state.seq, h.state.to_dict()).result()
    assert h.store.events == [] and h.store.compacted_through == h.state.seq  # what taught them is gone
    tail_after_the_checkpoint(h)
    assert h.store.events, "the tail must have events"
    restored = MasterCore.rebuild(h.store).estimates
    replayed = MasterCore.rebuild(everything).estimates
    live = h.state.estimates
    assert restored.to_dict() == replayed.to_dict() == live.to_dict()
    # and the figures themselves, by hand: b's first incarnation is history (10, 20, 30: mean 20)
    assert restored.runtime("b.alice").source == "history" and restored.runtime("b.alice").mean_s == 20.0
    assert restored.failures.counts("b.alice") == (0, 4)  # 3 finished before, 1 after
    assert restored.failures.counts("f.alice") == (1, 1)
    assert restored.runtime("c.alice").source == "spec" and restored.runtime("c.alice").mean_s == 300.0
    s = restored.startups
    assert (s.first_s("m1"), s.first_s("m2")) == (live.startups.first_s("m1"), live.startups.first_s("m2"))
    assert s.is_warm("m1", ("command", "sleep")) or s.is_warm("m2", ("command", "sleep"))


def test_the_checkpoint_form_is_deterministic_and_json():
    h = Harness()
    history_before_the_checkpoint(h)
    first = json.dumps(h.state.to_dict()["estimates"])
    again = json.dumps(CellState.from_dict(json.loads(json.dumps(h.state.to_dict()))).to_dict()["estimates"])
    assert first == again


def test_a_class_with_constraints_and_preferences_round_trips_equal():
    h = Harness()
    h.machine("m1", cpu="8", rack="r1")
    h.submit("c", cpu="1", memory="512Mi", constraints=["rack != r9"], soft_constraints=[{"constraint": "rack == r1",
                                                                                    "weight": 2}],
             spread="rack")
    request = h.state.jobs["c.alice"].request
    assert request.constraints and request.preferences and request.job == "c.alice"
    back = request_from_dict(json.loads(json.dumps(request_to_dict(request))))
    assert back == request and hash(back) == hash(request)


def test_a_checkpoint_written_before_estimates_were_kept_still_loads_with_spec_priors_and_running_starts():
    h = Harness()
    history_before_the_checkpoint(h)
    old = json.loads(json.dumps(h.state.to_dict()))
    del old["estimates"]  # the form written before this change
    restored = CellState.from_dict(old)
    est = restored.estimates
    assert est.started == {} and est.failures.counts("f.alice") == (0, 0)  # what was measured is lost
    assert est.runtime("c.alice").source == "spec" and est.runtime("c.alice").mean_s == 300.0
    name = h.task("c", 0).name
    started = h.state.estimates.started[name][0]
    assert est.remaining_s(restored, name, h.clock.now()) == 300.0 - (h.clock.now() - started)  # from history
