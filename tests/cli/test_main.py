"""The ``corral`` entry registers only the module of the command it runs; the map it uses is complete."""

from __future__ import annotations

import importlib

import typer
from typer.testing import CliRunner

from corral.cli import main as cli_main


def registered(module: str) -> list[str]:
    app = typer.Typer()
    importlib.import_module(module).register(app)
    return [c.name or c.callback.__name__ for c in app.registered_commands] + \
        [g.name or g.typer_instance.info.name for g in app.registered_groups]


def test_every_command_has_its_home_and_every_home_registers_its_commands():
    actual = {name: module for module in cli_main.COMMAND_MODULES for name in registered(module)}
    assert actual == cli_main.COMMAND_HOMES


def test_a_command_word_takes_its_module_only_and_anything_else_takes_all():
    assert cli_main.modules_for(["corral", "jobs", "-o", "json"]) == ("corral.cli.lists",)
    assert cli_main.modules_for(["corral", "submit", "x.yaml"]) == ("corral.cli.client",)
    for argv in (["corral"], ["corral", "--help"], ["corral", "--version"], ["corral", "nope"]):
        assert cli_main.modules_for(argv) == cli_main.COMMAND_MODULES


def test_the_app_of_one_module_parses_its_commands_as_the_whole_app_does():
    one, whole = cli_main.build_app(("corral.cli.lists",)), cli_main.app
    for app in (one, whole):
        result = CliRunner().invoke(app, ["jobs", "--help"])
        assert result.exit_code == 0 and "List jobs." in result.output
        bad = CliRunner().invoke(app, ["jobs", "--nope"])
        assert bad.exit_code == 2
    assert "sim" in CliRunner().invoke(whole, ["--help"]).output


def test_the_app_of_one_command_parses_it_as_the_whole_app_does_and_has_no_other():
    one = cli_main.build_app(("corral.cli.lists",), only="jobs")
    assert [c.name for c in one.registered_commands] == ["jobs"]
    result = CliRunner().invoke(one, ["jobs", "--help"])
    assert result.exit_code == 0 and "List jobs." in result.output and "--state" in result.output
    assert CliRunner().invoke(one, ["jobs", "--nope"]).exit_code == 2
    # a word that is no command of the modules given keeps every command of them
    assert len(cli_main.build_app(("corral.cli.lists",), only="nope").registered_commands) == 4
