"""A checkpoint and a log written before end states and typed events still load.

``data/checkpoint_v1.json`` was written by corral before this change (every ended job ``dead``,
events without a format version, transitions without their machine): a cell where ``ok`` finished,
``bad`` failed on its only machine (exit 127), ``gone`` was killed and ``svc`` runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from corral.master.clock import ManualClock
from corral.master.commands import Submit
from corral.master.core import MasterCore
from corral.master.failover import last_machine
from corral.master.state import CellState
from corral.model.job import JobState

DATA = json.loads((Path(__file__).parent / "data" / "checkpoint_v1.json").read_text())


def test_a_version_1_checkpoint_maps_dead_jobs_by_their_recorded_ends():
    state = CellState.from_dict(DATA["checkpoint"])
    state.validate()
    assert {j: job.state for j, job in state.jobs.items()} == {
        "ok.alice": JobState.SUCCEEDED, "bad.alice": JobState.FAILED,
        "gone.alice": JobState.KILLED, "svc.alice": JobState.RUNNING}
    # transitions carry their machine, recovered from the old notes
    svc = state.tasks["0.svc.alice.local"]
    assert last_machine(svc.history) == svc.machine and svc.machine in ("m1", "m2")


def _without_stories(d: dict) -> dict:
    """A checkpoint dict with each history cut to (seq, via): the story a replay writes today says more
    (the machine of every transition, how a job ended) than the one written then."""
    out = json.loads(json.dumps(d))
    # nor did it keep the estimates: those it loses are tests/master/test_estimates_checkpoint.py's
    out.pop("estimates", None)
    for kind in ("jobs", "tasks"):
        for record in out[kind].values():
            record["history"] = [(t["seq"], t["via"]) for t in record["history"]]
    return out


def test_the_version_1_log_replays_into_the_same_state_as_its_checkpoint():
    replayed = CellState("local")
    for event in DATA["events"]:
        replayed.apply(event)
    replayed.validate()
    loaded = CellState.from_dict(DATA["checkpoint"])
    assert _without_stories(replayed.to_dict()) == _without_stories(loaded.to_dict())
    assert {j: r.state for j, r in replayed.jobs.items()} == {j: r.state for j, r in loaded.jobs.items()}


def test_a_master_on_a_version_1_checkpoint_goes_on_scheduling_and_writes_the_new_format():
    core = MasterCore(state=CellState.from_dict(DATA["checkpoint"]), clock=ManualClock(2000.0), validate=True)
    out = core.handle(Submit({"name": "ok", "user": "alice", "tasks": 1, "resources": {"cpu": "1", "memory": "1Gi"}}))
    assert out.events[0].to_dict()["v"] == 2
    assert core.schedule().reply["placed"] == 1
    again = CellState.from_dict(core.state.to_dict())
    assert again.to_dict() == core.state.to_dict() and core.state.to_dict()["format"] == 2
