"""Reading a job spec file (YAML or JSON) into a mapping, with errors a user can find in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corral.client.errors import BAD_INPUT, ApiError, FieldError, one_line


def read_spec(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; ApiError (bad input) saying what is wrong: a file that cannot be read,
    is too large, not UTF-8, nests or expands too far or holds NaN/infinity (corral.model.specfile),
    YAML that does not parse (with its line and column, 1-based), or something other than a mapping."""
    import yaml

    from corral.model.specfile import MAX_BYTES, SpecFileError, load_yaml_bounded

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)  # a larger file is refused unread
    except OSError as e:
        raise ApiError(f"cannot read {path}: {e.strerror or e}", BAD_INPUT, kind="invalid") from None
    try:
        # bounded size, UTF-8, depth and alias expansion checked before anything is built; no NaN
        data = load_yaml_bounded(raw, str(path))
    except SpecFileError as e:
        raise ApiError(str(e), BAD_INPUT, kind="invalid") from None
    except yaml.YAMLError as e:
        raise yaml_error(path, e) from None
    if not isinstance(data, dict):
        raise ApiError(f"{path}: expected a mapping of job fields, got {type(data).__name__}", BAD_INPUT,
                       kind="invalid")
    return data


def yaml_error(path: Path, e: Exception) -> ApiError:
    """``PATH:LINE:COLUMN: what the parser found`` for a YAML error."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    what = one_line(f"{problem} ({context})" if context else problem)
    if mark is None:
        return ApiError(f"{path} is not valid YAML: {what}", BAD_INPUT, kind="invalid")
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    return ApiError(f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {what}", BAD_INPUT,
                    kind="invalid", errors=[FieldError("body", f"{where}: {what}")])
