"""What the master's API reads from a request: JSON bodies, labels, machine registrations.

Routes that read their JSON themselves (submit, update, register) do so to
name bad fields their own way and to refuse JSON that Python reads loosely
(NaN, Infinity, 1e400). Every refusal is an ``AdmissionError`` 400 naming the
field: ``body``, ``label``, ``capacity``, ...
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from corral.master.commands import RegisterMachine
from corral.master.errors import AdmissionError


class MachineRegistration(BaseModel):
    """``POST /api/v1/agents/register`` and ``POST /api/v1/machines`` (docs/agent-protocol.md).
    Integers are corral's units (millicores, bytes); strings are quantities ("8", "16Gi")."""

    name: str
    address: str = ""
    capacity: dict[str, int | str] = Field(description="cpu, memory, disk, gpu")
    gpu_model: str = ""
    attributes: dict[str, str] = {}
    isolation: str = ""


_REGISTRATION_FIELDS = frozenset(MachineRegistration.model_fields)


def parse_json(raw: bytes) -> Any:
    """A request body as JSON; 400 naming ``body`` for an empty body, bad JSON or non-finite numbers.

    JSON has one kind of number: ``5.0`` is the integer 5 (JSON Schema's ``integer`` says so too,
    and the OpenAPI document is read that way), so an integral literal within 2**53 is read as an
    int; ``5.5`` stays a float, and strings and booleans are never numbers."""
    if not raw:
        raise AdmissionError(400, [("body", "expected a JSON object, got an empty body")])
    try:
        return json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise AdmissionError(400, [("body", f"expected a JSON object, got invalid JSON ({e})")]) from None


def mapping(data: Any, what: str = "body") -> dict[str, Any]:
    """``data`` if it is a JSON object; 400 naming ``what`` otherwise."""
    if not isinstance(data, dict):
        raise AdmissionError(400, [(what, f"expected a JSON object, got {type(data).__name__}")])
    return data


def labels(texts: list[str]) -> list[tuple[str, str]]:
    """``["rack=r1", "zone=a"]`` -> ``[("rack", "r1"), ("zone", "a")]``; a 400 naming ``label`` otherwise."""
    pairs = []
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise AdmissionError(400, [("label", f"expected key=value, got {text!r}")])
        pairs.append((key, value))
    return pairs


def register_command(body: Any) -> RegisterMachine:
    """A :class:`MachineRegistration` body as a command; 400 naming every bad field (the core
    checks the capacity's quantities)."""
    body = mapping(body)
    errors = [(k or '""', "unknown field") for k in sorted(set(body) - _REGISTRATION_FIELDS)]
    for key in ("name", "address", "gpu_model", "isolation"):
        if key in body and not isinstance(body[key], str):
            errors.append((key, f"expected a string, got {body[key]!r}"))
    if "name" not in body:
        errors.append(("name", "required field is missing"))
    if not isinstance(body.get("capacity"), dict):
        errors.append(("capacity", "expected a mapping {cpu, memory, disk, gpu}"))
    if not isinstance(body.get("attributes", {}), dict):
        errors.append(("attributes", "expected a mapping of labels"))
    else:
        errors += [(f"attributes.{k}", f"expected a string label, got {v!r}")
                   for k, v in body.get("attributes", {}).items() if not isinstance(v, str)]
    if errors:
        raise AdmissionError(400, errors)
    return RegisterMachine(body["name"], body["capacity"], body.get("address", ""), body.get("gpu_model", ""),
                           body.get("attributes", {}), body.get("isolation", ""))


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


EXACT = 2**53  # every integer up to here is exactly a float


def _finite(text: str) -> float | int:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    if value.is_integer() and abs(value) <= EXACT:
        return int(value)
    return value
