"""Helpers the trace loaders share: where the traces live, names, CSV rows with line numbers, options.

Every problem with an input file becomes a :class:`~corral.sim.trace.TraceError` naming the
file, the 1-based line and what was expected there; nothing here lets a raw ``ValueError``
or ``KeyError`` from a bad file escape.
"""

from __future__ import annotations

import csv
import inspect
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corral.sim.trace import TraceError

GiB = 2**30
RACK_SIZE = 40  # machines per rack in the cells loaders synthesise (as corral/sim/synthetic.py)
_BAD = re.compile(r"[^a-z0-9_-]+")
_EMPTY = ("", "nan", "NaN", "NAN", "None", "null")


def default_traces_dir() -> Path:
    """``../shared/traces`` beside the repository root (found as corral/sim/openb/loader.py finds it)."""
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "traces"


def clean_name(text: str) -> str:
    """A trace id as a corral name: lowercase, only [a-z0-9_-], starting and ending alphanumeric, <= 64 chars.

    The job spec's rule (corral/model/spec.py) is stricter than Trace.check's: no '.', 64 chars.
    """
    name = _BAD.sub("-", text.strip().lower())[:64].strip("-_")
    return name or "x"


def existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise TraceError(path, 0, f"{what} not found")
    return path


def is_empty(text: str | None) -> bool:
    return text is None or text.strip() in _EMPTY


def csv_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (1-based line, row) for each data row; a missing column fails on line 1."""
    existing(path, "file")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise TraceError(path, 1, f"expected a header with columns {', '.join(columns)}; "
                                      f"missing {', '.join(missing)}")
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise TraceError(path, reader.line_num, f"expected {len(header)} comma-separated fields")
            yield reader.line_num, row


def number(path: Path, line: int, row: dict[str, str], column: str, what: str, *,
           integer: bool = False, minimum: float | None = 0.0) -> float:
    """The number in ``row[column]``; ``what`` says its unit for the error message."""
    text = row[column].strip()
    try:
        value = int(text) if integer else float(text)
        if not math.isfinite(value):
            raise ValueError
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise TraceError(path, line, f"column {column!r}: expected {kind} ({what}), got {text!r}") from None
    if minimum is not None and value < minimum:
        raise TraceError(path, line, f"column {column!r}: expected {what} >= {minimum:g}, got {text!r}")
    return value


def deletion_time(path: Path, line: int, row: dict[str, str], created: float, what: str) -> float | None:
    """The row's ``deletion_time`` (None when empty), which may not come before ``created``."""
    if is_empty(row["deletion_time"]):
        return None
    deleted = number(path, line, row, "deletion_time", what)
    if deleted < created:
        raise TraceError(path, line, f"column 'deletion_time': expected >= creation_time {created:g}, got {deleted:g}")
    return deleted


def parse_options(text: str, where: str) -> dict[str, str]:
    """``machines=10000,tasks=1000000`` -> {"machines": "10000", "tasks": "1000000"}."""
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise TraceError(where, 0, f"expected options as key=value separated by commas, got {part!r}")
        options[key.strip()] = value.strip()
    return options


def typed_options(loader: Callable[..., Any], options: dict[str, Any], where: str) -> dict[str, Any]:
    """Convert option values to the types of ``loader``'s keyword defaults; unknown keys fail."""
    params = {p.name: p.default for p in inspect.signature(loader).parameters.values()
              if p.kind is p.KEYWORD_ONLY and p.name != "seed"}
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in params:
            known = ", ".join(f"{k}={v}" for k, v in params.items()) or "none"
            raise TraceError(where, 0, f"unknown option {key!r}: this trace takes {known}")
        kind = type(params[key])
        if isinstance(value, str) and kind is not str:
            try:
                value = kind(value)
            except ValueError:
                raise TraceError(where, 0, f"option {key}: expected {kind.__name__}, got {value!r}") from None
        out[key] = value
    return out


def peak_demand(arrival: np.ndarray, end: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """The highest concurrent sum of each column of ``amounts`` (rows alive on [arrival, end)).

    ``end`` is +inf for rows that never leave. Departures at a time are counted before arrivals.
    """
    if len(arrival) == 0:
        return np.zeros(amounts.shape[1])
    times = np.concatenate([arrival, end])
    signs = np.concatenate([np.ones(len(arrival)), -np.ones(len(end))])
    order = np.lexsort((signs, times))  # at equal times, -1 (leave) sorts before +1 (arrive)
    deltas = np.concatenate([amounts, -amounts])[order]
    return np.cumsum(deltas, axis=0).max(axis=0)


def rack_attributes(index: int, **extra: str) -> tuple[tuple[str, str], ...]:
    """Attributes for a synthesised machine: racks of 40, power domains of 10 racks (corral/sim/synthetic.py)."""
    rack = index // RACK_SIZE
    return (("rack", f"r{rack}"), ("power", f"p{rack // 10}"), *extra.items())
