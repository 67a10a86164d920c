"""The published job spec schema (``corral schema``) accepts exactly what the API accepts: every file
in examples/ and the forms people type pass it and the API's parser; known-bad specs fail both."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from corral.model.schema import job_spec_schema, job_spec_schema_text
from corral.model.spec import SpecError, parse_job_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml") if p.name not in ("quota.yaml", "tokens.yaml"))
VALIDATOR = jsonschema.Draft202012Validator(job_spec_schema())


def base(**fields):
    return {"name": "web", "resources": {"cpu": "250m", "memory": "2Gi"}, **fields}


def api_accepts(spec: dict) -> bool:
    """What the API does with a spec without a user: the submitter's user goes in."""
    spec = dict(spec)
    if "user" not in spec and "owner" not in spec:
        spec["user"] = "alice"
    try:
        parse_job_spec(spec)
        return True
    except SpecError:
        return False


def test_the_schema_is_a_valid_json_schema_and_the_file_in_docs_is_current():
    jsonschema.Draft202012Validator.check_schema(job_spec_schema())
    assert (ROOT / "docs" / "job-spec.schema.json").read_text() == job_spec_schema_text()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_passes_the_schema_and_the_api_and_names_the_schema_for_editors(path):
    spec = yaml.safe_load(path.read_text())
    assert list(VALIDATOR.iter_errors(spec)) == []
    assert api_accepts(spec)
    assert "yaml-language-server: $schema=../docs/job-spec.schema.json" in path.read_text().splitlines()[0]


GOOD = [
    ("cpu as a number of cores", base(resources={"cpu": 1.5, "memory": 1073741824})),
    ("cpu as millicores and memory with a decimal unit", base(resources={"cpu": "500m", "memory": "1.5G"})),
    ("gpu_model as one string", base(resources={"cpu": 1, "memory": "1Gi", "gpu": 1, "gpu_model": "a100"})),
    ("gpu_model as a list", base(resources={"cpu": 1, "memory": "1Gi", "gpu": "2", "gpu_model": ["a100", "h100"]})),
    ("$schema and $id for editors", base(**{"$schema": "./job-spec.schema.json", "$id": "web"})),
    ("the user spelled owner", base(owner="bob")),
    ("the user given", base(user="bob", priority=9, tasks=3)),
    ("a job in an alloc set", base(alloc="web-allocs", alloc_placement="any")),
    ("kind job said out loud", base(kind="job")),
    ("every task beyond quota opportunistic", base(opportunistic=True)),
    ("at most 3 opportunistic tasks", base(tasks=5, opportunistic=3)),
    ("an alloc set", {"kind": "allocset", "name": "web-allocs", "count": 3, "resources": {"cpu": 2, "memory": "2Gi"},
                      "max_per_domain": {"rack": 1}}),
]

BAD = [
    ("an unknown field", base(prioirty=3)),
    ("an unknown resource", base(resources={"cpu": 1, "memory": "1Gi", "gpus": 1})),
    ("cpu that is not a quantity", base(resources={"cpu": "lots", "memory": "1Gi"})),
    ("memory in an unknown unit", base(resources={"cpu": 1, "memory": "12 parsecs"})),
    ("negative memory", base(resources={"cpu": 1, "memory": -1})),
    ("gpu_model a number", base(resources={"cpu": 1, "memory": "1Gi", "gpu_model": 5})),
    ("no tasks", base(tasks=0)),
    ("a priority above the highest", base(priority=12)),
    ("a name in capitals", base(name="Web")),
    ("no resources", {"name": "web"}),
    ("no name", {"resources": {"cpu": 1, "memory": "1Gi"}}),
    ("both user and owner", base(user="a", owner="b")),
    ("an appclass that does not exist", base(appclass="fast")),
    ("a kind that does not exist", base(kind="pod")),
    ("opportunistic as a string", base(opportunistic="yes")),
    ("a negative number of opportunistic tasks", base(opportunistic=-1)),
    ("a fractional number of opportunistic tasks", base(opportunistic=1.5)),
    ("an alloc placement that does not exist", base(alloc="a", alloc_placement="some")),
    ("an alloc set with a job's tasks", {"kind": "allocset", "name": "a", "tasks": 3,
                                         "resources": {"cpu": 2, "memory": "2Gi"}}),
    ("an alloc set with a command", {"kind": "allocset", "name": "a", "command": "sleep",
                                     "resources": {"cpu": 2, "memory": "2Gi"}}),
    ("an alloc set without resources", {"kind": "allocset", "name": "a"}),
]


@pytest.mark.parametrize("what,spec", GOOD, ids=[g[0] for g in GOOD])
def test_what_people_type_passes_the_schema_and_the_api(what, spec):
    assert list(VALIDATOR.iter_errors(json.loads(json.dumps(spec)))) == [] and api_accepts(spec)


@pytest.mark.parametrize("what,spec", BAD, ids=[b[0] for b in BAD])
def test_a_known_bad_spec_fails_the_schema_and_the_api(what, spec):
    assert list(VALIDATOR.iter_errors(spec)) and not api_accepts(spec)


def test_an_unknown_field_names_the_closest_known_one():
    with pytest.raises(SpecError) as e:
        parse_job_spec(base(user="a", prioirty=3))
    assert "prioirty: unknown field; did you mean `priority`?" in str(e.value)
