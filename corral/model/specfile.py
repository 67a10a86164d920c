"""Reading a job spec file (YAML or JSON) that cannot hurt its reader: bounded size, depth and alias expansion.

``yaml.safe_load`` alone builds whatever a file describes: a "billion laughs" file (anchors
of anchors) expands to gigabytes, 100,000 nested brackets overflow the composer's recursion,
invalid UTF-8 raises from deep inside the reader, and ``.nan``/``.inf`` load as floats that JSON
cannot carry. :func:`load_spec_file` checks all of that on PyYAML's event stream first (the
parser is an iterative state machine: no recursion, nothing built), then loads, then refuses
non-finite numbers. Every refusal is one :class:`SpecFileError` whose message names the problem,
and the time and memory spent are bounded by the limits below whatever the file holds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # the master's limit on a request body: a larger spec could not be sent anyway
MAX_DEPTH = 64  # nested mappings and lists; a job spec needs 3
MAX_NODES = 100_000  # scalars and collections once every alias is expanded


class SpecFileError(ValueError):
    """A spec file that cannot be read as one; the message is one line naming the problem."""


def load_spec_file(path: str | Path) -> Any:
    """The decoded contents of ``path``; :class:`SpecFileError` for a file that cannot be read,
    is too large, is not UTF-8, is not YAML, nests or expands too far, or holds a non-finite number."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise SpecFileError(f"cannot read {path}: {e.strerror}") from None
    return load_spec_bytes(raw, str(path))


def load_spec_bytes(raw: bytes, source: str = "spec") -> Any:
    """As :func:`load_spec_file`, of the bytes of a file named ``source`` (in messages)."""
    try:
        return load_yaml_bounded(raw, source)
    except yaml.YAMLError as e:
        raise SpecFileError(f"{source} is not valid YAML: {' '.join(str(e).split())}") from None


def load_yaml_bounded(raw: bytes, source: str = "spec") -> Any:
    """The YAML document in ``raw``: SpecFileError for what this module bounds, and the parser's
    own ``yaml.YAMLError`` (with its marks) for YAML that does not parse, for the caller to word."""
    text = decode(raw, source)
    check_shape(text, source)
    data = yaml.safe_load(text)
    check_finite(data, source)
    return data


def decode(raw: bytes, source: str) -> str:
    """``raw`` as text if it is within :data:`MAX_BYTES` and UTF-8; SpecFileError otherwise."""
    if len(raw) > MAX_BYTES:
        raise SpecFileError(f"{source}: larger than {MAX_BYTES} bytes (the master accepts no larger spec)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecFileError(f"{source}: not UTF-8 text (invalid byte 0x{raw[e.start]:02x} at offset {e.start})") \
            from None


def check_finite(data: Any, source: str) -> None:
    where = non_finite(data)
    if where is not None:
        path, value = where
        raise SpecFileError(f"{source}: {path or 'the document'}: expected a finite number, got {value}")


def check_shape(text: str, source: str) -> None:
    """Walk ``text``'s YAML events: SpecFileError past :data:`MAX_DEPTH` levels or :data:`MAX_NODES`
    nodes with aliases expanded (a node's expanded size is counted once, when it is anchored)."""
    sizes: dict[str, int] = {}  # anchor -> expanded node count of its node
    stack: list[list[Any]] = [[None, 0]]  # per open collection: [its anchor, nodes inside so far]
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) > MAX_DEPTH:
                raise SpecFileError(f"{source}: nested deeper than {MAX_DEPTH} levels")
            stack.append([event.anchor, 0])
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, inside = stack.pop()
            size = inside + 1
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor, 1)  # an unknown alias: the loader names it
        else:
            continue
        stack[-1][1] += size
        total = max(total, sum(level[1] for level in stack))
        if stack[-1][1] > MAX_NODES or total > MAX_NODES:
            raise SpecFileError(f"{source}: expands to more than {MAX_NODES} values (aliases of aliases?)")


def non_finite(data: Any, path: str = "") -> tuple[str, float] | None:
    """The first ``(dotted path, value)`` in ``data`` that is a NaN or an infinity, else None
    (iterative: the depth is bounded already, but the walk need not rely on it)."""
    todo = [(path, data)]
    while todo:
        where, value = todo.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where, value
        if isinstance(value, dict):
            todo.extend((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            todo.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
    return None
