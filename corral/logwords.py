"""The words of the daemons' log flags, ``--log-format`` and ``--log-level`` (corral/logfmt.py
does the logging). Apart from it so the CLI modules that declare the flags, which ``corral --help``
imports every one of, name them without loading the logging package."""

from __future__ import annotations

from typing import Literal

LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
