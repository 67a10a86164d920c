"""A Step: events numbered after the state's last and applied at once; effects queued; one Outcome."""

from __future__ import annotations

import pytest

from corral.master.clock import ManualClock
from corral.master.commands import KillTask, StartTask
from corral.master.events import JobKilled, MachineRegistered
from corral.master.state import CellState
from corral.master.step import Outcome, Step

MACHINE = {"name": "m1", "capacity": {"cpu": 4000, "memory": 2**33, "disk": 0, "gpu": 0}, "address": "http://m1"}


def step(cmd: str = "c-1") -> Step:
    return Step(CellState(), ManualClock(50.0), cmd)


def test_an_emitted_event_is_numbered_stamped_and_applied_at_once():
    s = step()
    event = s.emit(MachineRegistered, machine=MACHINE)
    assert (event.seq, event.cmd, event.t) == (1, "c-1", 50.0)
    assert s.state.seq == 1 and s.state.machines["m1"].state == "up"
    second = s.emit(MachineRegistered, machine={**MACHINE, "name": "m2"})
    assert second.seq == 2 and s.events == [event, second]


def test_an_event_that_fails_to_apply_marks_the_step_corrupt_and_is_not_kept():
    s = step()
    with pytest.raises(KeyError):
        s.emit(JobKilled, job="nosuch.alice")
    assert s.corrupt and s.events == []


# (case, the effect asked for, the effect queued)
EFFECTS = [
    ("a kill on a known machine carries its address",
     lambda s: s.kill("0.web.alice.local", "m1", "the job was killed"),
     KillTask("0.web.alice.local", "m1", "http://m1", "the job was killed")),
    ("a kill on an unknown machine carries no address",
     lambda s: s.kill("0.web.alice.local", "m9", "stray"), KillTask("0.web.alice.local", "m9", "", "stray")),
    ("a kill of a task on no machine carries neither", lambda s: s.kill("0.web.alice.local", None, "why"),
     KillTask("0.web.alice.local", "", "", "why")),
    ("a start carries the machine's address and the launch body",
     lambda s: s.start("0.web.alice.local", "m1", {"generation": 1}),
     StartTask("0.web.alice.local", "m1", "http://m1", {"generation": 1})),
]


@pytest.mark.parametrize("case,ask,effect", EFFECTS, ids=[c[0] for c in EFFECTS])
def test_effects_are_queued_with_the_machines_address(case, ask, effect):
    s = step()
    s.emit(MachineRegistered, machine=MACHINE)
    ask(s)
    assert s.effects == [effect]


def test_the_outcome_holds_the_events_effects_and_reply():
    s = step()
    s.emit(MachineRegistered, machine=MACHINE)
    s.kill("t", "m1", "r")
    s.reply = {"ok": True}
    out = s.outcome()
    assert type(out) is Outcome and (out.events, out.effects, out.reply) == (s.events, s.effects, {"ok": True})
