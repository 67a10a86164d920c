"""One definition of what a process can be started with: what the master refuses at admission is
exactly what the agent would refuse at launch, and no number is guessed from a string or a boolean."""

from __future__ import annotations

import pytest

from corral.agent.launch import LaunchError, parse_launch
from corral.model.spec import SpecError, parse_job_spec

BASE = {"name": "x", "user": "alice", "command": "sleep 1", "resources": {"cpu": 1, "memory": "1Gi"}}

PROCESS_CASES = [
    ("an env name with '=' cannot be passed to execve", {"env": {"A=B": "1"}}, "env", "got the name 'A=B'"),
    ("an empty env name neither", {"env": {"": "1"}}, "env", "got the name ''"),
    ("a NUL in an env value neither", {"env": {"A": "x\0y"}}, "env", "got a NUL in the value of A"),
    ("a NUL in the command", {"command": "sleep\x001"}, "command", "expected a command without NUL characters"),
    ("a NUL in an argument", {"args": ["-c", "x\0"]}, "args", "got one in argument 1"),
    ("a NUL in the working directory", {"workdir": "/tmp\0"}, "workdir", "without NUL characters"),
]


@pytest.mark.parametrize("case,extra,field,message", PROCESS_CASES, ids=[c[0] for c in PROCESS_CASES])
def test_the_master_and_the_agent_refuse_the_same_process_fields(case, extra, field, message):
    with pytest.raises(SpecError) as at_admission:
        parse_job_spec({**BASE, **extra})
    with pytest.raises(LaunchError) as at_launch:
        parse_launch({"task_id": "0.x.alice.local", **BASE, **extra})
    for refusal in (at_admission.value, at_launch.value):
        assert [f for f, _ in refusal.errors] == [field] and message in refusal.errors[0][1]


STRICT_CASES = [
    ("tasks as a string is not read as a number", {"tasks": "5"}, "tasks", "got '5'"),
    ("tasks true is not 1", {"tasks": True}, "tasks", "got True"),
    ("tasks 5.0 is not 5", {"tasks": 5.0}, "tasks", "got 5.0"),
    ("priority as a string", {"priority": "1"}, "priority", "got '1'"),
    ("restart.max_failures as a string", {"restart": {"max_failures": "3"}}, "restart.max_failures", "got '3'"),
    ("restart.backoff_s true", {"restart": {"backoff_s": True}}, "restart.backoff_s", "got True"),
    ("a max_per_domain limit as a string", {"max_per_domain": {"rack": "2"}}, "max_per_domain.rack", "got '2'"),
]


@pytest.mark.parametrize("case,extra,field,message", STRICT_CASES, ids=[c[0] for c in STRICT_CASES])
def test_numbers_are_not_coerced_from_strings_or_booleans(case, extra, field, message):
    with pytest.raises(SpecError) as e:
        parse_job_spec({**BASE, **extra})
    assert [f for f, _ in e.value.errors] == [field] and message in e.value.errors[0][1]


def test_well_formed_values_still_pass_both():
    extra = {"tasks": 3, "priority": 1, "env": {"A": "b=c"}, "args": ["-c", "x"], "restart": {"backoff_s": 2}}
    assert parse_job_spec({**BASE, **extra}).tasks == 3
    assert parse_launch({"task_id": "0.x.alice.local", **BASE, **extra}).env == {"A": "b=c"}
