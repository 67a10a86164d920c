"""corral's native trace file: JSON lines, one header, then one machine or job per line.

    {"trace": "openb", "source": "...", "notes": ["...", ...]}
    {"machine": {"name": "m00001", "cpu": 32000, "memory": 137438953472, "attributes": {"rack": "r0"}}}
    {"job": {"name": "svc-000001", "user": "user03", "arrival": 12.5, "cpu": 1200, "memory": 3221225472}}
    {"job": {"name": "web-allocs", "user": "user03", "arrival": 20, "kind": "allocset", "tasks": 4, "cpu": 2000, "memory": 4294967296}}
    {"job": {"name": "web", "user": "user03", "arrival": 21, "alloc": "web-allocs", "tasks": 4, "cpu": 1500, "memory": 1073741824}}

An alloc set is a job line with ``"kind": "allocset"``: ``tasks`` allocs of ``cpu``/``memory`` each,
placed like tasks and holding their resources while they live (until ``departure``; no ``duration``).
A job with ``"alloc"`` runs its tasks inside that set's allocs (``"alloc_placement": "any"``: any alloc
with room; default ``index``: task i in alloc i); the set must come earlier in the file, of the same user.

Fields are those of :class:`~corral.sim.trace.TraceMachine` and :class:`~corral.sim.trace.TraceJob`
in corral's units; a field left out takes its default. ``write_trace`` leaves out defaults and
writes jobs in trace order; ``read_trace`` checks every line and says which line is wrong and why.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from corral.sim.trace import Trace, TraceError, TraceJob, TraceMachine, sort_jobs
from corral.sim.traces.common import existing

# field -> (type check, description) ; "int?" etc. accept null.
_INT = (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
_NUM = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number")
_STR = (lambda v: isinstance(v, str), "a string")
_BOOL = (lambda v: isinstance(v, bool), "true or false")


def _maybe(check: tuple) -> tuple:
    return (lambda v: v is None or check[0](v), f"{check[1]} or null")


_STRINGS = (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings")
_LABELS = (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
           "an object of string values")
MACHINE_FIELDS = {"name": _STR, "cpu": _INT, "memory": _INT, "gpu": _INT, "gpu_model": _STR, "attributes": _LABELS}
JOB_FIELDS = {
    "name": _STR, "user": _STR, "arrival": _NUM, "cpu": _INT, "memory": _INT, "tasks": _INT,
    "duration": _maybe(_NUM), "departure": _maybe(_NUM), "gpu": _INT, "gpu_milli": _INT, "gpu_models": _STRINGS,
    "priority": _INT, "appclass": _STR, "cpu_usage": _maybe(_INT), "memory_usage": _maybe(_INT),
    "max_per_machine": _maybe(_INT), "kind": _STR, "alloc": _maybe(_STR), "alloc_placement": _STR,
    "gang": _BOOL, "min_tasks": _maybe(_INT),
}


def write_trace(trace: Trace, path: str | Path) -> None:
    """Write ``trace`` to ``path`` (overwriting it) in the native format."""
    with open(path, "w") as f:
        f.write(json.dumps({"trace": trace.name, "source": trace.source, "notes": list(trace.notes)}) + "\n")
        for m in trace.machines:
            record = _record(m)
            if "attributes" in record:
                record["attributes"] = dict(m.attributes)
            f.write(json.dumps({"machine": record}, separators=(",", ":")) + "\n")
        for j in trace.jobs:
            record = _record(j)
            if "gpu_models" in record:
                record["gpu_models"] = list(j.gpu_models)
            f.write(json.dumps({"job": record}, separators=(",", ":")) + "\n")


def read_trace(path: str | Path) -> Trace:
    """Read a native trace; any bad line raises TraceError with the file, the line and what was expected."""
    path = existing(Path(path), "native trace")
    header: dict[str, Any] | None = None
    machines: list[TraceMachine] = []
    jobs: list[TraceJob] = []
    names: dict[tuple[str, str], int] = {}
    with open(path) as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise TraceError(path, line, f"expected a JSON object: {e.msg} at column {e.colno}") from None
            if not isinstance(data, dict):
                raise TraceError(path, line, f"expected a JSON object, got {type(data).__name__}")
            if header is None:
                header = _header(path, line, data)
                continue
            if set(data) == {"machine"}:
                item: TraceMachine | TraceJob = TraceMachine(**_fields(path, line, "machine", data["machine"],
                                                                       MACHINE_FIELDS))
                one = Trace(header["trace"], [item], [], str(path))
            elif set(data) == {"job"}:
                item = TraceJob(**_fields(path, line, "job", data["job"], JOB_FIELDS))
                one = Trace(header["trace"], [], [item], str(path))
            else:
                raise TraceError(path, line, f"expected an object with one key, 'machine' or 'job', got keys "
                                             f"{', '.join(map(repr, data)) or 'none'}")
            kind = "machine" if isinstance(item, TraceMachine) else "job"
            try:
                one.check(across=False)
            except TraceError as e:
                raise TraceError(path, line, e.message) from None
            if (kind, item.name) in names:
                raise TraceError(path, line, f"{kind}.name: expected a unique name, {item.name!r} is on line "
                                             f"{names[kind, item.name]} too")
            names[kind, item.name] = line
            (machines if kind == "machine" else jobs).append(item)  # type: ignore[arg-type]
    if header is None:
        raise TraceError(path, 1, 'expected a header line {"trace": name, "notes": [...]}, the file is empty')
    trace = Trace(header["trace"], machines, sort_jobs(jobs), header.get("source") or str(path), header["notes"])
    try:
        trace.check()  # the rules between lines: a job's alloc set comes before it
    except TraceError as e:
        name = e.message.split(":")[0].removeprefix("job ")
        line = next((n for (kind, item), n in names.items() if kind == "job" and item == name), 0)
        raise TraceError(path, line, e.message) from None
    return trace


def _header(path: Path, line: int, data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data.get("trace"), str):
        raise TraceError(path, line, 'expected a header {"trace": name, "notes": [...]} with "trace" a string')
    data.setdefault("notes", [])
    if not _STRINGS[0](data["notes"]):
        raise TraceError(path, line, 'header "notes": expected a list of strings')
    if not isinstance(data.get("source", ""), str):
        raise TraceError(path, line, 'header "source": expected a string')
    unknown = set(data) - {"trace", "source", "notes"}
    if unknown:
        raise TraceError(path, line, f"header: unknown field {sorted(unknown)[0]!r}; expected trace, source, notes")
    return data


def _fields(path: Path, line: int, kind: str, data: Any, spec: dict[str, tuple]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TraceError(path, line, f"{kind}: expected an object of fields, got {type(data).__name__}")
    cls = TraceMachine if kind == "machine" else TraceJob
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    for name in required:
        if name not in data:
            raise TraceError(path, line, f"{kind}.{name}: required field is missing")
    out = {}
    for name, value in data.items():
        if name not in spec:
            raise TraceError(path, line, f"{kind}.{name}: unknown field; expected one of {', '.join(spec)}")
        check, what = spec[name]
        if not check(value):
            raise TraceError(path, line, f"{kind}.{name}: expected {what}, got {json.dumps(value)}")
        out[name] = value
    if "attributes" in out:
        out["attributes"] = tuple(out["attributes"].items())
    if "gpu_models" in out:
        out["gpu_models"] = tuple(out["gpu_models"])
    for name in ("arrival", "duration", "departure"):  # JSON may write 5 for 5.0
        if out.get(name) is not None:
            out[name] = float(out[name])
    return out


def _record(item: TraceMachine | TraceJob) -> dict[str, Any]:
    """The fields of ``item`` that differ from their defaults (required fields always)."""
    out = {}
    for f in fields(item):
        value = getattr(item, f.name)
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else MISSING)
        if default is MISSING or value != default:
            out[f.name] = value
    return out
