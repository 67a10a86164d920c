"""What a failed request raises: :class:`ApiError`, with the master's field errors.

The master answers every refusal with ``{"error", "message", "errors":
[{"field", "message"}]}``; :class:`ApiError` carries all of it: ``kind``
(``invalid``, ``not_found``, ``conflict``, ...), ``status`` (the HTTP status,
0 when no answer came), ``errors`` (the :class:`FieldError` list) and
``message`` (one line to show). ``code`` is the exit status a command line
leaves with: 2 for bad input (a 4xx, no address, no token), 1 for the server
(unreachable, timed out, a 5xx).
"""

from __future__ import annotations

from typing import Any, NamedTuple

BAD_INPUT, SERVER = 2, 1
START_HINT = "is a master running? start a local cell with `corral up`, or a master alone with `corral master`"


class FieldError(NamedTuple):
    field: str
    message: str


class ApiError(Exception):
    """A request that did not succeed (see the module docstring)."""

    def __init__(self, message: str, code: int, status: int = 0, kind: str = "",
                 errors: list[FieldError] | None = None):
        super().__init__(one_line(message))
        self.message, self.code, self.status = one_line(message), code, status
        self.kind, self.errors = kind or ("unreachable" if status == 0 else ""), list(errors or ())

    def field(self, name: str) -> str | None:
        """The message about field ``name``, if the master named it."""
        return next((e.message for e in self.errors if e.field == name), None)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def field_errors(body: Any) -> list[FieldError]:
    errors = body.get("errors") if isinstance(body, dict) else None
    out = []
    for e in errors if isinstance(errors, list) else ():
        if isinstance(e, dict):
            out.append(FieldError(str(e.get("field") or ""), str(e.get("message", ""))))
        else:
            out.append(FieldError("", str(e)))
    return out


def error_message(status: int, body: Any, text: str = "") -> str:
    """The one line a master's error reply means: its ``message``, else its ``errors`` joined, else
    its ``error`` kind, else the HTTP status (and the start of the body)."""
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message.strip():
            return one_line(message)
        errors = field_errors(body)
        if errors:
            return one_line("; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors))
        kind = body.get("error")
        if isinstance(kind, str) and kind:
            return f"HTTP {status}: {kind}"
    snippet = one_line(text)[:200]
    return f"HTTP {status}" + (f": {snippet}" if snippet else "")


def from_response(status: int, body: Any, text: str = "") -> ApiError:
    kind = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else ""
    return ApiError(error_message(status, body, text), BAD_INPUT if status < 500 else SERVER, status, kind,
                    field_errors(body))
