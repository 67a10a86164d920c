"""corral.logfmt: JSON lines with the context of a command, text lines with it as key=value."""

from __future__ import annotations

import json
import logging

import pytest

from corral.logfmt import JsonFormatter, TextFormatter, setup


def record(**extra) -> logging.LogRecord:
    r = logging.LogRecord("corral.master.events", logging.INFO, __file__, 1, "task placed", None, None)
    for k, v in extra.items():
        setattr(r, k, v)
    return r


def test_a_json_line_carries_the_command_id_and_what_the_line_is_about():
    line = json.loads(JsonFormatter().format(record(cmd="c-17", task="0.web.alice.local", machine="m1")))
    assert line["message"] == "task placed" and line["level"] == "info" and line["cmd"] == "c-17"
    assert line["task"] == "0.web.alice.local" and line["machine"] == "m1" and line["time"].endswith("Z")


def test_a_text_line_shows_the_context_after_the_message():
    assert TextFormatter().format(record(cmd="c-17", machine="m1")).endswith("task placed cmd=c-17 machine=m1")


@pytest.mark.parametrize("fmt,level,field", [("xml", "info", "--log-format"), ("json", "loud", "--log-level")])
def test_a_format_or_level_not_listed_is_refused_naming_the_flag(fmt, level, field):
    with pytest.raises(ValueError, match=field):
        setup(fmt, level)
