"""The job spec's ``expected_runtime``: optional seconds > 0, strict, quiet in the canonical form."""
import pytest

from corral.master.admission import IN_PLACE_FIELDS
from corral.master.records import spec_to_dict
from corral.model.spec import SpecError, parse_job_spec

BASE = {"name": "a", "user": "u", "command": "true", "resources": {"cpu": 1, "memory": "1Gi"}}


def test_it_defaults_to_none_and_takes_a_number_of_seconds():
    assert parse_job_spec(BASE).expected_runtime is None
    assert parse_job_spec({**BASE, "expected_runtime": 600}).expected_runtime == 600.0
    assert parse_job_spec({**BASE, "expected_runtime": 90.5}).expected_runtime == 90.5


@pytest.mark.parametrize("value, words", [
    ("60", "number"), (True, "number"), (0, "greater than 0"), (-5, "greater than 0"),
    (float("inf"), "finite"), (float("nan"), "finite")])
def test_a_bad_value_is_refused_naming_the_field(value, words):
    with pytest.raises(SpecError) as e:
        parse_job_spec({**BASE, "expected_runtime": value})
    assert "expected_runtime" in str(e.value) and words in str(e.value)


def test_an_old_spec_reads_back_unchanged_and_the_default_stays_quiet():
    spec = parse_job_spec(BASE)
    assert "expected_runtime" not in spec_to_dict(spec)
    hinted = parse_job_spec({**BASE, "expected_runtime": 30})
    assert spec_to_dict(hinted)["expected_runtime"] == 30.0
    assert parse_job_spec(spec_to_dict(hinted)) == hinted


def test_changing_it_is_an_in_place_update():
    assert "expected_runtime" in IN_PLACE_FIELDS
