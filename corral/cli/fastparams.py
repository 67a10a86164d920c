"""Command-line values converted without pydantic where the conversion is plain.

typer 0.29 converts every parameter's value (``--output json``, ``--tail
100``) through a pydantic ``TypeAdapter``, built the first time the
parameter is used. That imports pydantic and builds schemas on every
``corral`` command: about 50 ms measured of a ``corral jobs`` that should
take 150 ms in all. :func:`install` puts a fast path in front of typer's
own: a ``str``, ``int``, ``float``, ``Path`` or ``list[str]`` parameter
without a custom parser or a range whose value is in a form with exactly
one meaning (``"100"``, ``"0.5"``, a non-empty path, one of a ``Literal``'s
strings) is converted here, to
the very value typer would give; anything else (a range, a choice, an
unusual number such as ``1_000``, bad input and its error message) goes
through typer's own conversion, unchanged.

``install()`` does nothing if typer is not the version it was written
against (its hook is missing).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

_INT = re.compile(r"-?[0-9]{1,18}")
_FLOAT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")
_installed = False


def fast_value(annotation: Any, info: Any, value: Any) -> tuple[bool, Any]:
    """``(True, converted)`` when ``value`` (what click parsed for a parameter of ``annotation`` with
    typer ``ParameterInfo`` ``info``) has a plain conversion, else ``(False, None)``."""
    if getattr(info, "parser", None) is not None:
        return False, None
    if annotation is str:
        return (True, value) if isinstance(value, str) else (False, None)
    if annotation is int or annotation is float:
        if info.min is not None or info.max is not None:
            return False, None
        if type(value) is annotation:  # a default such as 1.0: already the value typer would give
            return True, value
        if not isinstance(value, str):
            return False, None
        if (_INT if annotation is int else _FLOAT).fullmatch(value):
            return True, annotation(value)
        return False, None
    if get_origin(annotation) is Literal:
        # A choice (``-o text|json|yaml|wide``): the parser has already refused a value not listed.
        choices = get_args(annotation)
        return (True, value) if isinstance(value, str) and value in choices else (False, None)
    if annotation == list[str]:
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return True, list(value)
        return False, None
    return False, None


def install() -> bool:
    """Put the fast path in front of typer's conversion (once); False if typer has no such hook."""
    global _installed
    if _installed:
        return True
    try:
        from typer import _coercion, core
        from typer._param_types import coerce_cli_path
    except ImportError:
        return False
    original = getattr(core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None:
        return False

    class _Fast(base):  # type: ignore[misc, valid-type]
        """Plain conversions here; the rest through the runtime parameter typer would have built."""

        def __init__(self, descriptor: Any):
            object.__setattr__(self, "parameter_info", descriptor.parameter_info)
            object.__setattr__(self, "annotation", descriptor.annotation)
            object.__setattr__(self, "_descriptor", descriptor)
            object.__setattr__(self, "_slow", None)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation, info = self.annotation, self.parameter_info
            if (annotation is Path and isinstance(value, str) and value and info.parser is None
                    and info.path_type is None):
                # typer's path checks (exists, file_okay, ...) run as they would; only the
                # str -> Path step, which typer hands to pydantic, is done here.
                return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
            done, converted = fast_value(annotation, info, value)
            if done:
                return converted
            if self._slow is None:
                object.__setattr__(self, "_slow", original(self._descriptor))
            return self._slow._coerce_value(value, param, ctx)

    def build(descriptor: Any) -> Any:
        if descriptor.file_annotation is not None:
            return original(descriptor)
        return _Fast(descriptor)

    core.build_runtime_param = build
    _installed = True
    return True
