"""Logging for corral's daemons (master, agent): ``--log-format text|json`` and ``--log-level``.

JSON lines carry ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``
and the context a line is about, given as ``extra=`` to the logging call:
``cmd`` (the id of the command that caused it), ``job``, ``task``,
``machine``, ``event``, ``seq``. Text lines show the same context as
``key=value`` after the message. Standard library only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Literal

LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
CONTEXT = ("cmd", "job", "task", "machine", "event", "seq", "via")


def _context(record: logging.LogRecord) -> dict[str, object]:
    return {k: getattr(record, k) for k in CONTEXT if getattr(record, k, None) is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
               .replace("+00:00", "Z"), "level": record.levelname.lower(), "logger": record.name,
               "message": record.getMessage(), **_context(record)}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context(record)
        if not context:
            return text
        head, sep, rest = text.partition("\n")  # a traceback stays below the first line
        return head + " " + " ".join(f"{k}={v}" for k, v in context.items()) + sep + rest


def setup(log_format: str = "text", level: str = "info") -> None:
    """Send the root logger's records to stderr in ``log_format`` at ``level`` and above. As
    ``logging.basicConfig`` does, this leaves a process whose logging is configured already (a test
    runner's) alone, but for a handler set here before, which is replaced. ValueError naming the
    choices for a format or level not listed."""
    if log_format not in FORMATS:
        raise ValueError(f"--log-format: expected one of {', '.join(FORMATS)}, got {log_format!r}")
    if level.lower() not in LEVELS:
        raise ValueError(f"--log-level: expected one of {', '.join(LEVELS)}, got {level!r}")
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "corral", False)]
    if len(ours) != len(root.handlers):
        return
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.corral = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The HTTP server's own access lines are not corral's: only its warnings and errors.
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
