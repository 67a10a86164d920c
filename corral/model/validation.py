"""Pydantic validation errors in corral's words: ``[(field, message)]``.

The one formatter for every place that validates with pydantic: job specs
(corral.model.spec), agent launches (corral.agent.launch) and the query and
path parameters of the master's and the agent's HTTP APIs. A field is a dotted
path (``resources.memory``, ``task_ids.1``); a message says what was expected
and, for a scalar, what came (``expected a valid integer, unable to parse
string as an integer, got 'lots'``). :func:`error_body` is the one shape in
which the HTTP APIs answer such errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

# pydantic's names for validator wrappers, which it puts into locations between real fields
_WRAPPERS = frozenset({"function-after", "function-before", "function-wrap", "function-plain"})
# where in a request a FastAPI parameter came from: the first part of a RequestValidationError location
REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})
_PREFIXES = ("Value error, ", "Assertion failed, ")
_MAX_GOT = 80  # characters of the offending value quoted back


def field_errors(errors: ValidationError | Iterable[Mapping[str, Any]], prefix: str = "", default: str = "body",
                 request: bool = False) -> list[tuple[str, str]]:
    """``(field, message)`` for each error of a ``ValidationError`` (or of its ``.errors()`` list,
    as FastAPI's ``RequestValidationError.errors()`` gives).

    ``prefix`` goes before every field (``prefix="spec"`` -> ``spec.resources.memory``); an error
    of the whole value gets ``prefix`` or, without one, ``default``. With ``request=True`` the
    first part of each location says where in the request the value was (body, query, path,
    header) and is dropped: ``("query", "limit")`` -> ``limit``.
    """
    items = errors.errors() if isinstance(errors, ValidationError) else errors
    return [(field_path(e.get("loc", ()), prefix, default, request), error_message(e)) for e in items]


def field_path(location: Iterable[Any], prefix: str = "", default: str = "body", request: bool = False) -> str:
    """``("resources", "function-after", "memory")`` -> ``resources.memory``."""
    parts = list(location)
    if request and parts and parts[0] in REQUEST_PARTS:
        parts = parts[1:]
    path = ".".join(str(p) for p in parts if p not in _WRAPPERS)
    if prefix:
        return f"{prefix}.{path}" if path else prefix
    return path or default


def error_message(error: Mapping[str, Any]) -> str:
    """One pydantic error in words: what was expected, and what came when it is a scalar."""
    kind = error.get("type")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    message = str(error.get("msg") or "invalid")
    for strip in _PREFIXES:
        message = message.removeprefix(strip)
    message = message.replace("Input should be", "expected").replace("input should be", "expected")
    if message[:1].isupper() and message[1:2].islower():  # "String should ..." but not "URL ..."
        message = message[0].lower() + message[1:]
    got = error.get("input")
    if "got" not in message and isinstance(got, (str, int, float, bool, type(None))):
        text = repr(got)
        message += f", got {text if len(text) <= _MAX_GOT else text[:_MAX_GOT - 1] + '…'}"
    return message


def error_body(kind: str, errors: list[tuple[str, str]]) -> dict[str, Any]:
    """The JSON body of every error answer of corral's HTTP APIs (master and agent):
    ``{"error": kind, "message": "field: message; ...", "errors": [{"field", "message"}]}``."""
    return {"error": kind, "message": "; ".join(f"{f}: {m}" for f, m in errors),
            "errors": [{"field": f, "message": m} for f, m in errors]}
