"""The spec's health_check and update sections: strict validation, errors naming the field."""

from __future__ import annotations

import pytest

from corral.agent.launch import parse_launch
from corral.model.spec import SpecError, parse_job_spec

BASE = {"name": "web", "user": "alice", "resources": {"cpu": 1, "memory": "64Mi"}}

# (case, fields, the field named, words of its message)
REFUSED = [
    ("neither http nor command", {"health_check": {"interval_s": 1}}, "health_check", "exactly one of"),
    ("both http and command", {"health_check": {"http": "http://127.0.0.1:1/", "command": ["true"]}},
     "health_check", "exactly one of"),
    ("a URL that is not http", {"health_check": {"http": "ftp://x/"}}, "health_check.http", "http:// or https://"),
    ("an empty command", {"health_check": {"command": []}}, "health_check.command", "non-empty argv"),
    ("a command given as a string", {"health_check": {"command": "curl -f x"}}, "health_check.command", "tuple"),
    ("a NUL in a command argument", {"health_check": {"command": ["sh", "a\0b"]}}, "health_check.command",
     "NUL"),
    ("an interval as a string", {"health_check": {"command": ["true"], "interval_s": "5"}},
     "health_check.interval_s", "valid number"),
    ("a zero interval", {"health_check": {"command": ["true"], "interval_s": 0}}, "health_check.interval_s",
     "greater than 0"),
    ("a negative timeout", {"health_check": {"command": ["true"], "timeout_s": -1}}, "health_check.timeout_s",
     "greater than 0"),
    ("failures as a boolean", {"health_check": {"command": ["true"], "failures": True}},
     "health_check.failures", "valid integer"),
    ("zero failures", {"health_check": {"command": ["true"], "failures": 0}}, "health_check.failures",
     "greater than or equal to 1"),
    ("a negative initial delay", {"health_check": {"command": ["true"], "initial_delay_s": -1}},
     "health_check.initial_delay_s", "greater than or equal to 0"),
    ("a misspelt field", {"health_check": {"command": ["true"], "intervl_s": 1}}, "health_check.intervl_s",
     "did you mean `interval_s`"),
    ("auto_rollback_after zero", {"update": {"auto_rollback_after": 0}}, "update.auto_rollback_after",
     "greater than or equal to 1"),
    ("auto_rollback_after as a string", {"update": {"auto_rollback_after": "2"}}, "update.auto_rollback_after",
     "valid integer"),
    ("a misspelt update field", {"update": {"auto_rolback_after": 2}}, "update.auto_rolback_after",
     "did you mean `auto_rollback_after`"),
]


@pytest.mark.parametrize("case,fields,field,words", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_bad_health_check_or_update_section_is_refused_naming_the_field(case, fields, field, words):
    with pytest.raises(SpecError) as e:
        parse_job_spec({**BASE, **fields})
    assert [f for f, _ in e.value.errors] == [field], e.value.errors
    assert words in e.value.errors[0][1], e.value.errors


def test_a_good_health_check_reads_with_its_defaults_and_the_agent_reads_what_the_master_sends():
    spec = parse_job_spec({**BASE, "health_check": {"http": "http://127.0.0.1:8080/healthz", "failures": 2},
                           "update": {"auto_rollback_after": 3}})
    check = spec.health_check
    assert (check.interval_s, check.timeout_s, check.failures, check.initial_delay_s) == (10.0, 5.0, 2, None)
    assert check.first_delay_s == 10.0 and spec.update.auto_rollback_after == 3
    launch = parse_launch({"task_id": "t", "command": "sleep",
                           "health_check": {**check.model_dump(mode="json"), "added_later": 1}})
    assert launch.health_check.http == check.http and launch.health_check.failures == 2
    command = parse_job_spec({**BASE, "health_check": {"command": ["true"], "interval_s": 1, "initial_delay_s": 0}})
    assert command.health_check.first_delay_s == 0.0 and command.health_check.command == ("true",)
