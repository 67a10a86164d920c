"""The rules the OpenAPI document states agree with what admission does: every string a pattern
allows is accepted by the code that reads it (hypothesis draws from each pattern), and a few
strings it refuses are refused by both."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.master import openapi_rules as rules
from corral.master.errors import AdmissionError
from corral.master.naming import resolve_job, resolve_task
from corral.model.constraints import Constraint
from corral.model.quantity import parse_bytes, parse_cpu
from corral.model.spec import parse_job_spec

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(st.from_regex(rules.CONSTRAINT, fullmatch=True))
def test_every_constraint_the_document_allows_parses(text):
    Constraint.parse(text)
    parse_job_spec({"name": "a", "user": "b", "resources": {"cpu": 1, "memory": 1}, "constraints": [text]})


@FAST
@given(st.from_regex(rules.CPU_TEXT, fullmatch=True), st.from_regex(rules.BYTES_TEXT, fullmatch=True))
def test_every_quantity_string_the_document_allows_is_accepted_within_its_bounds(cpu, memory):
    spec = parse_job_spec({"name": "a", "user": "b", "resources": {"cpu": cpu, "memory": memory, "disk": memory}})
    assert spec.resources.cpu == parse_cpu(cpu)
    assert spec.resources.memory == parse_bytes(memory)


@FAST
@given(st.from_regex(rules.CPU_POSITIVE, fullmatch=True), st.from_regex(rules.BYTES_POSITIVE, fullmatch=True))
def test_a_machines_capacity_the_document_allows_is_positive(cpu, memory):
    from corral.model.quantity import parse_capacity_mapping

    capacity, errors = parse_capacity_mapping({"cpu": cpu, "memory": memory})
    assert not errors and capacity["cpu"] > 0 and capacity["memory"] > 0


@FAST
@given(st.from_regex(rules.JOB_REF, fullmatch=True), st.from_regex(rules.TASK_REF, fullmatch=True))
def test_job_and_task_names_the_document_allows_resolve(job, task):
    resolve_job(job, "ops")
    resolve_task(task, "ops", "local")


def _spec(**fields):
    return parse_job_spec({"name": "a", "user": "b", "resources": {"cpu": 1, "memory": 1}, **fields})


@pytest.mark.parametrize("pattern, text, admission", [
    (rules.CONSTRAINT, "rack", lambda t: Constraint.parse(t)),
    (rules.TASK_REF, "0", lambda t: resolve_task(t, "ops", "local")),
    (rules.JOB_REF, "a.b.c", lambda t: resolve_job(t, "ops")),
    (rules.CPU_TEXT, "123456", lambda t: _spec(resources={"cpu": t, "memory": 1})),
    (rules.BYTES_TEXT, "99Ti", lambda t: _spec(resources={"cpu": 1, "memory": t})),
    (rules.ENV_NAME, "A=B", lambda t: _spec(env={t: "1"})),
    (rules.NO_NUL, "a\x00b", lambda t: _spec(command=t)),
])
def test_what_the_document_refuses_admission_refuses_too(pattern, text, admission):
    assert not re.match(pattern, text)
    with pytest.raises((ValueError, AdmissionError)):
        admission(text)


@FAST
@given(st.from_regex(rules.SINCE, fullmatch=True), st.from_regex(rules._event_types(), fullmatch=True))
def test_an_event_querys_since_and_types_the_document_allows_are_read(since, types):
    from corral.master.history import parse_time
    from corral.master.history_api import _types

    parse_time(since)
    assert _types(types)
