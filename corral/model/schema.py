"""The published JSON Schema of a job spec file (``corral schema``): what a file may hold, as the API
reads it.

The pydantic model (corral.model.spec.JobSpec) describes a spec *after*
parsing: cpu in millicores, memory in bytes, ``gpu_model`` a tuple. A file
holds what people type, so the published schema says so: quantities as
numbers or strings (``250m``, ``1.5``, ``2Gi``), ``gpu_model`` as a string
(``a100|h100``) or a list, ``user`` optional (a job is its submitter's) or
spelled ``owner``, names by their rule, and ``$schema``/``$id`` for editors.
tests/model/test_schema.py checks that it accepts every example and refuses
what the API refuses.
"""

from __future__ import annotations

import json
from typing import Any

from corral.model.placement import ALIASES, PLACEMENTS
from corral.model.quantity import MAX_BYTES, MAX_CPU_MILLI, MAX_GPUS

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
CPU_PATTERN = rf"^\s*{_NUMBER}\s*m?\s*$"
BYTES_PATTERN = rf"^\s*{_NUMBER}\s*(B|Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?\s*$"
NAME_PATTERN = r"^[a-z0-9]([a-z0-9_\-]{0,62}[a-z0-9])?$"
SCHEMA_ID = "https://corral.invalid/schemas/job-spec.json"


def _quantity(description: str, pattern: str, maximum: float) -> dict[str, Any]:
    return {"description": description, "anyOf": [{"type": "number", "minimum": 0, "maximum": maximum},
                                                  {"type": "string", "pattern": pattern}]}


def job_spec_schema() -> dict[str, Any]:
    from corral.model.spec import JobSpec  # pydantic

    schema = JobSpec.model_json_schema()
    resources = schema["$defs"]["ResourcesSpec"]["properties"]
    resources["cpu"] = _quantity("cores (1.5, \"1.5\") or millicores (\"500m\")", CPU_PATTERN,
                                 MAX_CPU_MILLI / 1000)
    resources["memory"] = _quantity("bytes (1073741824) or a quantity (\"512Mi\", \"2Gi\", \"1.5G\")",
                                    BYTES_PATTERN, MAX_BYTES)
    resources["disk"] = {**_quantity("bytes or a quantity, as memory", BYTES_PATTERN, MAX_BYTES), "default": 0}
    resources["gpu"] = {"description": "whole GPUs", "default": 0, "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_GPUS}, {"type": "string", "pattern": r"^\s*[0-9]+\s*$"}]}
    resources["gpu_model"] = {"description": "one model, models joined by |, or a list of models", "default": [],
                              "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    _as_typed(schema)
    # An alloc set (kind: allocset, corral.model.allocset) shares the job's resources and rules.
    from corral.model.allocset import AllocSetSpec

    allocset = AllocSetSpec.model_json_schema(ref_template="#/$defs/{model}")
    defs = {**allocset.pop("$defs", {}), **schema.pop("$defs")}  # the job's defs, quantities as typed
    _as_typed(allocset)
    defs["AllocSetSpec"] = allocset
    defs["JobSpec"] = schema
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, "$defs": defs,
            "if": {"properties": {"kind": {"const": "allocset"}}, "required": ["kind"]},
            "then": {"$ref": "#/$defs/AllocSetSpec"}, "else": {"$ref": "#/$defs/JobSpec"}}


def _as_typed(schema: dict[str, Any]) -> None:
    """Names by their rule, ``user`` optional or spelled ``owner``, ``$schema``/``$id`` for editors."""
    props = schema["properties"]
    for key in ("name", "user"):
        props[key] = {**props[key], "pattern": NAME_PATTERN}
    props["owner"] = {**props["user"], "title": "Owner", "description": "the same as user"}
    props["user"]["description"] = "the owner; default: the user of the token that submits it"
    if "alloc" in props:  # a job's: the name of an alloc set (an alloc set has none)
        props["alloc"] = {**props["alloc"], "anyOf": [{"type": "string", "pattern": NAME_PATTERN}, {"type": "null"}]}
    if "placement" in props:  # a job's (an alloc set has none)
        props["placement"] = {**props["placement"], "anyOf": [{"enum": [*PLACEMENTS, *ALIASES]}, {"type": "null"}]}
    props["$schema"] = {"type": "string", "description": "the schema this file follows (for editors)"}
    props["$id"] = {"type": "string", "description": "an identifier of this file (for editors)"}
    schema["required"] = [r for r in schema.get("required", []) if r != "user"]
    schema["not"] = {"required": ["user", "owner"]}  # one or the other


def job_spec_schema_text() -> str:
    return json.dumps(job_spec_schema(), indent=2) + "\n"
