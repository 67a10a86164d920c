"""Logging for corral's daemons (master, agent): ``--log-format text|json`` and ``--log-level``.

JSON lines carry ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``
and the context a line is about, given as ``extra=`` to the logging call:
``cmd`` (the id of the command that caused it), ``job``, ``task``,
``machine``, ``event``, ``seq``. Text lines show the same context as
``key=value`` after the message. Standard library only.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from datetime import datetime, timezone

from corral.logwords import FORMATS, LEVELS, LogFormat, LogLevel  # noqa: F401 (the flags' words, re-exported)
CONTEXT = ("cmd", "job", "task", "machine", "event", "seq", "via")


def _context(record: logging.LogRecord) -> dict[str, object]:
    return {k: getattr(record, k) for k in CONTEXT if getattr(record, k, None) is not None}


_second: list = [None, ""]  # the last whole second formatted, and its text (one strftime a second)


def utc_time(created: float) -> str:
    """RFC 3339, UTC, milliseconds: ``2026-12-02T01:30:12.517Z``."""
    whole = int(created)
    if _second[0] != whole:
        _second[:] = [whole, datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": utc_time(record.created), "level": record.levelname.lower(), "logger": record.name,
               "message": record.getMessage(), **_context(record)}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{utc_time(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        context = _context(record)
        if not context:
            return text
        head, sep, rest = text.partition("\n")  # a traceback stays below the first line
        return head + " " + " ".join(f"{k}={v}" for k, v in context.items()) + sep + rest


class _Handler(logging.StreamHandler):
    """A stream handler that flushes a warning or worse at once and the rest every ``FLUSH_S`` (a
    thread) or at exit: a busy master logs a line per submit and per placement, and a write call
    per line cost about as much as the rest of a submission's logging."""

    FLUSH_S = 0.25

    def __init__(self, stream: object) -> None:
        super().__init__(stream)  # type: ignore[arg-type]
        self.corral = True
        self._pending = threading.Event()
        threading.Thread(target=self._flusher, name="corral-log-flush", daemon=True).start()
        atexit.register(self.flush_now)

    def flush(self) -> None:  # called by emit() after every record
        self._pending.set()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self.flush_now()

    def flush_now(self) -> None:
        self._pending.clear()
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def _flusher(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(self.FLUSH_S)
            self.flush_now()


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
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Fields no line shows: not gathered for every record (a busy master logs a line per placement).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # The HTTP server's own access lines are not corral's: only its warnings and errors.
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
