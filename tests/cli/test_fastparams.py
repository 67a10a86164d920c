"""The CLI's fast conversion of option values gives what typer's own (pydantic) conversion gives,
and leaves to typer every value it has no plain conversion for."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer import _coercion
from typer.models import OptionInfo

from corral.cli.fastparams import fast_value


def typer_value(annotation, info, value):
    param = _coercion.build_runtime_param(_coercion.resolve_type_descriptor(annotation, info))
    return param._coerce_value(value, param=None, ctx=None)


PLAIN = [
    ("a string is itself", str, OptionInfo(), "json"),
    ("an empty string is itself", str, OptionInfo(), ""),
    ("a decimal integer", int, OptionInfo(), "100"),
    ("a negative integer", int, OptionInfo(), "-3"),
    ("a float with a fraction", float, OptionInfo(), "0.25"),
    ("a float written as an integer", float, OptionInfo(), "2"),
    ("a list of strings", list[str], OptionInfo(), ("rack=r1", "zone=a")),
    ("an empty list of strings", list[str], OptionInfo(), ()),
]


@pytest.mark.parametrize("what,annotation,info,value", PLAIN, ids=[p[0] for p in PLAIN])
def test_a_plain_value_converts_to_what_typer_gives(what, annotation, info, value):
    done, converted = fast_value(annotation, info, value)
    expected = typer_value(annotation, info, value)
    assert done and converted == expected and type(converted) is type(expected)


LEFT_TO_TYPER = [
    ("an integer with a range, whose bounds typer checks", int, OptionInfo(min=1), "5"),
    ("an integer with an underscore", int, OptionInfo(), "1_000"),
    ("an integer with spaces", int, OptionInfo(), " 12"),
    ("a float in exponent form", float, OptionInfo(), "1e3"),
    ("a value that is not a number", int, OptionInfo(), "many"),
    ("a path, which typer checks", Path, OptionInfo(), "x.yaml"),
    ("a custom parser", str, OptionInfo(parser=str.upper), "x"),
]


@pytest.mark.parametrize("what,annotation,info,value", LEFT_TO_TYPER, ids=[p[0] for p in LEFT_TO_TYPER])
def test_anything_else_is_left_to_typer(what, annotation, info, value):
    assert fast_value(annotation, info, value) == (False, None)


def test_the_cli_runs_with_the_fast_path_installed_and_typer_still_rejects_bad_numbers():
    from typer.testing import CliRunner

    from corral.cli.main import app

    result = CliRunner().invoke(app, ["logs", "web/0", "--tail", "many"])
    assert result.exit_code == 2 and "--tail" in result.stderr and "valid integer" in result.stderr
    result = CliRunner().invoke(app, ["up", "--agents", "0"])
    assert result.exit_code == 2 and "--agents" in result.stderr
