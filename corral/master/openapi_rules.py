"""The semantic rules of the API's inputs, stated in its OpenAPI document.

FastAPI and pydantic describe types; admission checks more: a job's name pattern, a failure
domain's words, a constraint's grammar, the characters a process may be given, quantities and
their bounds, what a machine's registration and an agent's notification must hold, the forms of
a job's and a task's name in a path, an event query's filters. ``tighten(document)`` writes each rule the API enforces into
the document, so that anything the document calls valid is accepted (2xx, or 404/409 for what
does not exist or conflicts) and anything it calls invalid is refused with a 4xx. Where the API
is more lenient than a rule can say (``cpu: 1e-9`` reads as 0 millicores, a quantity string
of any length), the document is the narrower of the two: it promises less than the API takes.
Bounds the API does not enforce are not stated: a document narrower than the API in a way a
fuzzer can reach would fail ``negative_data_rejection``.

What JSON Schema cannot say is left to the reader: ``after`` must name an existing job of the
same user; named ports' fixed numbers must be distinct; an update's body must name the job of
its path. tests/master/api_fuzz_hooks.py teaches schemathesis those three.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from corral.model.machine import FAILURE_DOMAINS
from corral.model.quantity import MAX_BYTES, MAX_CPU_MILLI, MAX_GPUS

NAME = r"[a-z0-9]([a-z0-9_\-]{0,62}[a-z0-9])?"  # corral.model.spec.NAME
JOB_REF = rf"^{NAME}(\.{NAME})?$"  # naming.resolve_job: NAME or NAME.USER
INDEX = r"[0-9]{1,9}"
TASK_REF = rf"^({NAME}(\.{NAME})?/{INDEX}|{INDEX}\.{NAME}\.{NAME}\.[A-Za-z0-9_\-]+)$"  # naming.resolve_task
MACHINE_NAME = r"^[a-z0-9_.\-]{1,128}$"  # admission.admit_machine
NO_NUL = r"^[^\x00]*$"  # corral.model.process: execve takes C strings
ENV_NAME = r"^[^=\x00]+$"
PORT_NAME = r"^[a-z][a-z0-9]{0,14}$"  # corral.model.ports.PORT_NAME
_ATTR = r"[A-Za-z0-9_.\-/]+"
_VALUE = r"[A-Za-z0-9_.\-]+"
CONSTRAINT = (rf"^({_ATTR} ?(==|!=) ?{_VALUE}|{_ATTR} (in|not_in) \(?{_VALUE}(,{_VALUE})*\)?"
              rf"|{_ATTR} (exists|not_exists))$")  # a subset of corral.model.constraints' grammar
# Quantity strings with their digits bounded, so no string the document allows is over a bound.
CPU_TEXT = r"^([0-9]{1,5}(\.[0-9]{1,3})?|[0-9]{1,8}m)$"  # cores (< 100,000) or millicores
BYTES_TEXT = r"^([0-9]{1,13}|[0-9]{1,4}(\.[0-9]{1,3})?(Ki|Mi|Gi|k|K|M|G)|[0-9](\.[0-9]{1,3})?(Ti|T))$"
CPU_POSITIVE = r"^([1-9][0-9]{0,4}(\.[0-9]{1,3})?|[1-9][0-9]{0,7}m)$"  # at least one core or millicore
BYTES_POSITIVE = r"^([1-9][0-9]{0,12}|[1-9][0-9]{0,3}(Ki|Mi|Gi|k|K|M|G)|[1-9](Ti|T))$"
TASK_STATES = ("starting", "running", "backoff", "finished", "failed", "killed")  # notify.TASK_STATES


def _text(pattern: str = NO_NUL, nullable: bool = False) -> dict[str, Any]:
    schema = {"type": "string", "pattern": pattern}
    return {"anyOf": [schema, {"type": "null"}]} if nullable else schema


def _quantity(number_max: float, text: str, description: str, default: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "anyOf": [
        {"type": "number", "minimum": 0, "maximum": number_max}, {"type": "string", "pattern": text}]}
    if default is not None:
        out["default"] = default
    return out


def job_spec(components_ref: str = "#/components/schemas/") -> dict[str, dict[str, Any]]:
    """The JobSpec schema of the API and the schemas it refers to, keyed by component name."""
    from corral.model.schema import job_spec_schema

    published = json.loads(json.dumps(job_spec_schema()).replace('"#/$defs/', f'"{components_ref}'))
    defs = published.pop("$defs", {})
    # the file's schema is either kind (if kind: allocset, then AllocSetSpec, else JobSpec); the API
    # describes the alloc set itself (api.py), from the pydantic model
    published = defs.pop("JobSpec", published)
    defs.pop("AllocSetSpec", None)
    for key in ("$schema", "$id"):
        published.pop(key, None)
    props = published["properties"]
    published.pop("not", None)  # user or owner: the API document names only user
    for key in ("owner", "$schema", "$id"):
        props.pop(key, None)
    props["spread"] = {"anyOf": [{"enum": list(FAILURE_DOMAINS)}, {"type": "null"}], "default": None,
                       "description": "spread the tasks over this failure domain"}
    props["max_per_domain"] = {"type": "object", "propertyNames": {"enum": list(FAILURE_DOMAINS)},
                               "additionalProperties": {"type": "integer", "minimum": 1},
                               "description": "at most this many tasks per failure domain"}
    props["constraints"] = {"type": "array", "items": {"type": "string", "pattern": CONSTRAINT}, "default": [],
                            "description": "rack != r7, zone in (a,b), ssd exists"}
    props["command"] = _text(nullable=True)
    props["workdir"] = _text(nullable=True)
    props["args"] = {"type": "array", "items": _text(), "default": []}
    props["env"] = {"type": "object", "propertyNames": {"pattern": ENV_NAME}, "additionalProperties": _text(),
                    "description": "names without '=' or NUL, values without NUL"}
    published["additionalProperties"] = False
    soft = defs["SoftConstraintSpec"]
    soft["properties"]["constraint"] = {"type": "string", "pattern": CONSTRAINT}
    soft["properties"]["weight"] = {"type": "number", "exclusiveMinimum": 0, "default": 1.0}
    resources = defs["ResourcesSpec"]
    res = resources["properties"]
    res["cpu"] = _quantity(MAX_CPU_MILLI / 1000, CPU_TEXT, "cores (1.5, \"1.5\") or millicores (\"500m\")")
    res["memory"] = _quantity(MAX_BYTES, BYTES_TEXT, "bytes or a quantity (\"512Mi\", \"2Gi\")")
    res["disk"] = _quantity(MAX_BYTES, BYTES_TEXT, "bytes or a quantity, as memory", default=0)
    res["gpu"] = {"type": "integer", "minimum": 0, "maximum": MAX_GPUS, "default": 0, "description": "whole GPUs"}
    res["ports"] = {"default": [], "anyOf": [
        {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}, "uniqueItems": True},
        {"type": "object", "propertyNames": {"pattern": PORT_NAME},
         "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 65535},
         "description": "named ports: 0 is any free port; fixed numbers distinct"}]}
    # a fractional GPU share (gpu_milli < 1000) is a share of one GPU
    resources["anyOf"] = [{"properties": {"gpu_milli": {"const": 1000}}},
                          {"required": ["gpu"], "properties": {"gpu": {"const": 1}}}]
    if "HealthCheckSpec" in defs:  # exactly one of http (a URL) or command (a non-empty argv)
        check = defs["HealthCheckSpec"]
        url = {"type": "string", "pattern": r"^https?://[^\x00]{0,2040}$"}
        argv = {"type": "array", "minItems": 1, "items": _text(),
                "prefixItems": [{"type": "string", "minLength": 1, "pattern": NO_NUL}]}
        check["oneOf"] = [{"required": ["http"], "properties": {"http": url, "command": {"type": "null"}}},
                          {"required": ["command"], "properties": {"command": argv, "http": {"type": "null"}}}]
    return {"JobSpec": published, **defs}


def machine_registration() -> dict[str, Any]:
    """``POST /agents/register`` and ``POST /machines`` (inputs.register_command, admission.admit_machine)."""
    return {"title": "MachineRegistration", "type": "object", "additionalProperties": False,
            "required": ["name", "capacity"],
            "description": "Integers are corral's units (millicores, bytes); strings are quantities (\"8\", \"16Gi\").",
            "properties": {
                "name": {"type": "string", "pattern": MACHINE_NAME},
                "address": {"type": "string", "default": ""},
                "capacity": {"type": "object", "required": ["cpu", "memory"], "properties": {
                    "cpu": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_CPU_MILLI},
                                      {"type": "string", "pattern": CPU_POSITIVE}]},
                    "memory": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_BYTES},
                                         {"type": "string", "pattern": BYTES_POSITIVE}]},
                    "disk": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_BYTES},
                                       {"type": "string", "pattern": BYTES_TEXT}]},
                    "gpu": {"type": "integer", "minimum": 0, "maximum": MAX_GPUS}},
                    "description": "cpu and memory greater than 0; disk, gpu"},
                "gpu_model": {"type": "string", "default": ""},
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}, "default": {}},
                "isolation": {"type": "string", "default": ""}}}


def notification() -> dict[str, Any]:
    """``POST /agents/{machine}/notify`` (notify.parse_notification)."""
    maybe_int = {"type": ["integer", "null"]}
    status = {"type": "object", "required": ["task_id", "generation", "state"], "properties": {
        "task_id": {"type": "string", "minLength": 1, "maxLength": 512},
        "generation": {"type": "integer", "minimum": 0},
        "state": {"enum": list(TASK_STATES)},
        "exit_code": maybe_int,
        "failures": maybe_int, "pid": maybe_int,
        "last_error": {"type": ["string", "null"]}}}
    return {"type": "object", "additionalProperties": False, "required": ["incarnation", "seq", "tasks"],
            "properties": {
                "incarnation": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]},
                "seq": {"type": "integer", "minimum": 0},
                "tasks": {"type": "array", "maxItems": 5000, "items": status}}}


PATH_PATTERNS = {"job": JOB_REF, "task": TASK_REF, "name": MACHINE_NAME, "machine": MACHINE_NAME}
# history_api: an RFC 3339 time (a subset: days 1-28, so every one exists) or seconds since the epoch
_TIME = (r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
         r"(\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])?")
SINCE = rf"^([0-9]{{1,12}}(\.[0-9]{{1,6}})?|{_TIME})$"


def _event_types() -> str:
    from corral.master.events import EVENT_TYPES

    one = "|".join(sorted(EVENT_TYPES))
    return rf"^\s*(({one})\s*)?(,\s*(({one})\s*)?)*$"  # _types: comma-separated, padded, empties dropped


def _query_patterns(path: str) -> dict[str, str]:
    if path.endswith("/events"):
        return {"job": JOB_REF, "since": SINCE, "type": _event_types()}
    return {}


def _set_pattern(schema: dict[str, Any], pattern: str) -> None:
    """``pattern`` on ``schema``'s string form (itself, or its string branch of an anyOf)."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == "string":
            branch["pattern"] = pattern


def tighten(document: dict[str, Any]) -> dict[str, Any]:
    """Write the rules into ``document`` (an OpenAPI dict, changed in place and returned)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(job_spec())
    components["MachineRegistration"] = machine_registration()
    spec = components["JobSpec"]
    spec["required"] = [f for f in spec.get("required", []) if f != "user"]  # a submission is the caller's
    components["JobUpdate"] = {**copy.deepcopy(spec), "title": "JobUpdate",  # name and user: its path's
                               "required": [f for f in spec["required"] if f != "name"]}
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            in_query = _query_patterns(path)
            for parameter in operation.get("parameters", []):
                where = parameter.get("in")
                pattern = PATH_PATTERNS.get(parameter["name"]) if where == "path" else in_query.get(parameter["name"])
                if pattern and where in ("path", "query"):
                    _set_pattern(parameter["schema"], pattern)
            if path.endswith("/notify"):
                operation["requestBody"]["content"]["application/json"]["schema"] = notification()
    return document
