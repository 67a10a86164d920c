"""The agent's numbered task changes and the deltas cut from them (corral/agent/changes.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from corral.agent.changes import ReportSequence, delta_of


def status(task: str, state: str = "running", generation: int = 1, **extra) -> dict:
    return {"task_id": task, "generation": generation, "state": state, "pid": 7, "exit_code": None,
            "failures": 0, "restarts": 0, "last_error": None, "healthy": None,
            "usage": {"cpu_milli": 1, "memory_bytes": 2}, **extra}


def state_of(*statuses: dict, incarnation: int = 11) -> dict:
    return {"machine": "m1", "incarnation": incarnation, "tasks": list(statuses), "usage": {}}


def test_every_change_gets_the_next_seq_and_usage_or_the_countdown_are_not_changes():
    changes = ReportSequence()
    assert changes.observe([status("a"), status("b")]) == 2
    assert changes.observe([status("a", usage={"cpu_milli": 900}), status("b", restart_in_s=3.2)]) == 2
    assert changes.observe([status("a", state="finished"), status("b")]) == 3
    assert changes.since(2) == ({"a"}, [])
    assert changes.since(3) == (set(), [])


def test_a_task_that_left_is_named_as_removed_and_one_that_comes_back_is_a_change():
    changes = ReportSequence()
    changes.observe([status("a"), status("b")])
    changes.observe([status("a")])
    assert changes.since(2) == (set(), ["b"])
    changes.observe([status("a"), status("b", generation=2)])
    assert changes.since(2) == ({"b"}, [])
    assert changes.since(0) == ({"a", "b"}, [])


@pytest.mark.parametrize("since", [-1, 4])
def test_a_seq_it_never_gave_cannot_be_answered(since):
    changes = ReportSequence()
    changes.observe([status("a"), status("b"), status("c")])
    assert changes.since(since) is None


def test_removals_it_forgot_make_older_seqs_unanswerable():
    changes = ReportSequence(keep_removed=2)
    changes.observe([status(t) for t in "abcd"])   # seq 4
    changes.observe([status("d")])                  # a, b, c leave: 5, 6, 7; a is forgotten
    assert changes.floor == 5
    assert changes.since(4) is None
    assert changes.since(5) == (set(), ["b", "c"])


def test_delta_of_cuts_the_state_only_when_asked_by_the_same_incarnation():
    changes = ReportSequence()
    first = [status("a"), status("b")]
    changes.observe(first)
    changes.observe([status("a", state="failed"), status("b")])
    full = delta_of(state_of(status("a", state="failed"), status("b")), changes, None, None)
    assert full["seq"] == 3 and "since" not in full and len(full["tasks"]) == 2
    other = delta_of(state_of(status("a", state="failed"), status("b")), changes, 2, "12")
    assert "since" not in other and len(other["tasks"]) == 2
    delta = delta_of(state_of(status("a", state="failed"), status("b")), changes, 2, "11")
    assert delta["since"] == 2 and delta["removed"] == [] and [t["task_id"] for t in delta["tasks"]] == ["a"]


states = st.sampled_from(["starting", "running", "backoff", "finished", "failed"])
snapshot = st.dictionaries(st.sampled_from("abcdef"), st.tuples(states, st.integers(1, 3)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(snapshot, st.booleans()), min_size=1, max_size=25))
def test_applying_each_delta_to_the_last_applied_answer_gives_the_full_state(steps):
    """The master's side in miniature: it keeps the tasks of the last answer it applied and asks
    for what changed since; some answers are lost. After every answer it applies, what it holds
    equals the agent's full state (in what the master acts on)."""
    changes = ReportSequence(keep_removed=3)
    known: dict[str, dict] | None = None
    seq = None
    for tasks, lost in steps:
        statuses = [status(t, state=s, generation=g) for t, (s, g) in sorted(tasks.items())]
        changes.observe(statuses)
        answer = delta_of(state_of(*statuses), changes, seq, None if seq is None else "11")
        if lost:
            continue
        if "since" in answer:
            assert known is not None
            known = dict(known)
            known.update((t["task_id"], t) for t in answer["tasks"])
            for task in answer["removed"]:
                known.pop(task, None)
        else:
            known = {t["task_id"]: t for t in answer["tasks"]}
        seq = answer["seq"]
        assert {k: (v["state"], v["generation"]) for k, v in known.items()} == \
            {t: (s, g) for t, (s, g) in tasks.items()}
