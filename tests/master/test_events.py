"""Typed events: one (de)serialisation each, a format version, and logs of the earlier format."""

from __future__ import annotations

import pytest

from corral.master import events as ev

EXAMPLES = [
    ev.MachineRegistered(1, "c-1", 10.0, {"name": "m1", "capacity": {"cpu": 4000, "memory": 1, "disk": 0, "gpu": 0}}),
    ev.MachineLost(2, "c-2", 11.0, "m1"),
    ev.JobSubmitted(3, "c-3", 12.0, "web.alice", {"name": "web", "user": "alice"}, "req-1"),
    ev.JobUpdated(4, "c-4", 13.0, "web.alice", {"name": "web", "user": "alice", "tasks": 2}, True, 2),
    ev.JobKilled(5, "c-5", 14.0, "web.alice", "killed by its user"),
    ev.JobFailed(6, "c-6", 15.0, "web.alice", "task 0 failed on m1; last error: exit 1"),
    ev.TaskScheduled(7, "c-7", 16.0, "0.web.alice.local", "m1", 3, (0, 1)),
    ev.TaskEnded(8, "c-8", 17.0, "0.web.alice.local", "finish", "exit code 0", "m1"),
    ev.AllocSetSubmitted(9, "c-9", 18.0, "web-allocs.alice",
                         {"kind": "allocset", "name": "web-allocs", "user": "alice", "count": 2}, "req-2"),
    ev.AllocSetKilled(10, "c-10", 19.0, "web-allocs.alice", "killed by its user"),
    ev.CopyScheduled(11, "c-11", 20.0, "3.sort.alice.local", 1, "m2", 1,
                     "speculative copy of 3.sort.alice: running 52 s, siblings' p90 5.1 s × 1.5"),
    ev.CopyEnded(12, "c-12", 21.0, "3.sort.alice.local", 1, "won", "copy 1 finished first on m2", "m2"),
    ev.TaskScheduled(11, "c-11", 20.0, "0.web.alice.local", "m1", 4, alloc="0.web-allocs.alice.local"),
    ev.JobSubmitted(12, "c-12", 21.0, "batch.alice", {"name": "batch", "user": "alice", "tasks": 6,
                                                      "opportunistic": True}, None, opportunistic=2),
    ev.TaskUpgraded(13, "c-13", 22.0, "5.batch.alice.local", "its user's quota has room"),
    ev.TaskQueued(14, "c-14", 23.0, "0.batch.alice.local", "m17", 5, 40.0),
    ev.TaskDequeued(15, "c-15", 24.0, "0.batch.alice.local", "m17", "started on m3 first"),
    ev.TaskStarted(16, "c-16", 25.0, "0.batch.alice.local", "m3", 6, 1.25),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=[f"{e.TYPE}-{e.seq}" for e in EXAMPLES])
def test_every_event_type_survives_its_own_round_trip_with_the_format_version(event):
    d = event.to_dict()
    assert d["v"] == ev.FORMAT_VERSION and d["type"] == event.TYPE and d["seq"] == event.seq
    assert ev.decode(d) == event


def test_every_event_type_is_in_the_registry_once():
    assert sorted(ev.EVENT_TYPES) == sorted({e.TYPE for e in EXAMPLES})


def test_the_parsed_spec_handed_to_apply_is_not_logged():
    event = ev.JobSubmitted(1, "c", 0.0, "web.alice", {"name": "web"}, None, parsed=object())
    assert "parsed" not in event.to_dict() and ev.decode(event.to_dict()).parsed is None


LEGACY = [
    ("a version-1 task end without a machine", {"seq": 9, "type": "task_ended", "cmd": "x-1", "t": 1.0,
                                                "task": "0.a.b.local", "via": "evict", "note": "preempted"},
     ev.TaskEnded(9, "x-1", 1.0, "0.a.b.local", "evict", "preempted", None)),
    ("a version-1 placement with gpus as a list", {"seq": 3, "type": "task_scheduled", "cmd": "x-2", "t": 2.0,
                                                   "task": "0.a.b.local", "machine": "m1", "gpus": [1],
                                                   "generation": 1},
     ev.TaskScheduled(3, "x-2", 2.0, "0.a.b.local", "m1", 1, (1,))),
    ("a placement logged before allocs is in no alloc", {"v": 2, "seq": 4, "type": "task_scheduled", "cmd": "x-3",
                                                         "t": 3.0, "task": "0.a.b.local", "machine": "m1",
                                                         "generation": 2},
     ev.TaskScheduled(4, "x-3", 3.0, "0.a.b.local", "m1", 2, alloc=None)),
    ("a submission logged before opportunistic tasks has none", {"v": 2, "seq": 5, "type": "job_submitted",
                                                                 "cmd": "x-4", "t": 4.0, "job": "a.b",
                                                                 "spec": {"name": "a"}, "request_id": None},
     ev.JobSubmitted(5, "x-4", 4.0, "a.b", {"name": "a"}, None, opportunistic=0)),
]


@pytest.mark.parametrize("name,d,want", LEGACY, ids=[c[0] for c in LEGACY])
def test_events_logged_before_the_format_version_decode_the_same(name, d, want):
    assert ev.decode(d) == want


BAD = [
    ("an unknown type names the known ones", {"seq": 1, "type": "job_exploded"}, "unknown type 'job_exploded'"),
    ("a version from the future is refused", {"seq": 1, "type": "machine_lost", "v": 99, "machine": "m"},
     "format version 99"),
    ("a missing field is named", {"seq": 1, "type": "machine_lost"}, "lacks field 'machine'"),
]


@pytest.mark.parametrize("name,d,message", BAD, ids=[c[0] for c in BAD])
def test_an_event_this_version_cannot_read_is_refused_with_the_reason(name, d, message):
    with pytest.raises(ev.EventFormatError, match=message):
        ev.decode(d)
