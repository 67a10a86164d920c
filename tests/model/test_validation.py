"""The one formatter of pydantic validation errors: fields as dotted paths, messages in corral's words."""

from __future__ import annotations

from enum import Enum

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from corral.model.validation import error_body, field_errors


class Colour(str, Enum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int

    @field_validator("size")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"expected a positive size, got {value}")
        return value


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    colour: Colour = Colour.RED
    inner: Inner | None = None
    tags: list[str] = []


def errors_of(data, **options):
    with pytest.raises(ValidationError) as e:
        Outer.model_validate(data)
    return field_errors(e.value, **options)


CASES = [
    ("a missing field is required", {}, [("name", "required field is missing")]),
    ("an unknown field is named as unknown", {"name": "a", "x": 1}, [("x", "unknown field")]),
    ("a wrong type says what was expected and what came", {"name": 5},
     [("name", "expected a valid string, got 5")]),
    ("an enum lists its values and what came", {"name": "a", "colour": "green"},
     [("colour", "expected 'red' or 'blue', got 'green'")]),
    ("a validator's own words lose pydantic's prefix and keep their 'got'", {"name": "a", "inner": {"size": -1}},
     [("inner.size", "expected a positive size, got -1")]),
    ("a list entry is named by its index", {"name": "a", "tags": ["ok", 3]},
     [("tags.1", "expected a valid string, got 3")]),
    ("a mapping that came is not quoted back", {"name": {"a": 1}}, [("name", "expected a valid string")]),
]


@pytest.mark.parametrize("case,data,expected", CASES, ids=[c[0] for c in CASES])
def test_each_error_names_the_field_and_says_what_was_expected(case, data, expected):
    assert errors_of(data) == expected


def test_the_prefix_goes_before_every_field_and_names_an_error_of_the_whole_value():
    assert errors_of({"name": 5}, prefix="spec") == [("spec.name", "expected a valid string, got 5")]
    with pytest.raises(ValidationError) as e:
        Outer.model_validate("not a mapping")
    assert field_errors(e.value, default="spec")[0][0] == "spec"
    assert field_errors(e.value, prefix="job")[0][0] == "job"


def test_request_locations_drop_where_in_the_request_the_value_was():
    errors = [{"type": "int_parsing", "loc": ("query", "limit"), "msg": "Input should be a valid integer",
               "input": "lots"},
              {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
    assert field_errors(errors, default="request", request=True) == [
        ("limit", "expected a valid integer, got 'lots'"), ("request", "required field is missing")]
    assert field_errors(errors)[0][0] == "query.limit", "without request=True a location is a field path"


def test_a_long_value_is_quoted_back_shortened():
    (_, message), = errors_of({"name": "a", "colour": "x" * 500})
    assert message.endswith("…") and len(message) < 150


def test_the_error_body_joins_the_fields_into_one_message():
    assert error_body("invalid", [("a", "bad"), ("b.c", "worse")]) == {
        "error": "invalid", "message": "a: bad; b.c: worse",
        "errors": [{"field": "a", "message": "bad"}, {"field": "b.c", "message": "worse"}]}
