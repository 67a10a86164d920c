"""The ``corral`` command: one typer app; each command group lives in its own module.

Each module listed in ``COMMAND_MODULES`` exposes ``register(app)``. Those
modules import at their top only what registering needs (typer and the
standard library): a command's own dependencies (NumPy, the scheduler, the
simulator, rich, pydantic models, the master) are imported inside it, so a
client command such as ``corral jobs`` starts in a fraction of the time
(tests/cli/test_startup.py keeps it so). ``main`` goes one step further: when
the first word names a command, it registers only the module that command
lives in (``COMMAND_HOMES``), and of its commands only that one; help,
``--version`` and anything unknown get the whole app. tests/cli/test_main.py
checks the map against what the modules register.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from typer._click.exceptions import UsageError

from corral.cli import fastparams

COMMAND_MODULES: tuple[str, ...] = (
    "corral.cli.demo",
    "corral.cli.schema",
    "corral.cli.agent",
    "corral.cli.sim",
    "corral.cli.master",
    "corral.cli.client",
    "corral.cli.lists",
    "corral.cli.allocs",
    "corral.cli.events",
    "corral.cli.up",
    "corral.cli.masters",
    "corral.cli.ca",
    "corral.cli.logs",
    "corral.cli.scheduler",
)

# Optional modules that libraries the server commands use (``corral master``, ``agent``, ``up``:
# httpx for agent links; client commands load no httpx at all) import eagerly for features corral
# never uses: httpcore imports trio (an async library, ~40 ms) just in case a caller runs under
# it, and httpx imports its own command-line client (rich and pygments, ~40 ms). Marked missing
# when the ``corral`` command starts, unless something imported them already, they take the
# libraries' own "not installed" fallbacks.
UNUSED_OPTIONAL_MODULES = ("trio", "httpx._main")

# Each top-level command -> the module that registers it (kept equal to COMMAND_MODULES' own by a test).
COMMAND_HOMES: dict[str, str] = {
    "demo": "corral.cli.demo", "schema": "corral.cli.schema", "agent": "corral.cli.agent",
    "sim": "corral.cli.sim", "master": "corral.cli.master",
    **dict.fromkeys(("submit", "plan", "status", "why", "kill", "update", "rollback"), "corral.cli.client"),
    **dict.fromkeys(("jobs", "tasks", "machines", "shares"), "corral.cli.lists"),
    "allocs": "corral.cli.allocs",
    "events": "corral.cli.events", "up": "corral.cli.up", "masters": "corral.cli.masters",
    "ca": "corral.cli.ca", "logs": "corral.cli.logs",
    **dict.fromkeys(("scheduler", "schedulers"), "corral.cli.scheduler"),
}


def _usage_error_line(self, file=None) -> None:
    """A bad flag or argument as the CLI's other errors are: ``corral COMMAND: ...``, one line (exit 2)."""
    ctx = self.ctx
    command = ctx.info_name if ctx is not None and ctx.parent is not None else None
    message = " ".join(self.format_message().replace("Value error, ", "").split())
    typer.echo(f"corral {command}: {message}" if command else f"corral: {message}", err=True)


UsageError.show = _usage_error_line  # type: ignore[method-assign]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"corral {version('corral')}")
        except PackageNotFoundError:
            typer.echo("corral (not installed: version unknown)")
        raise typer.Exit(0)


def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print corral's version and exit")) -> None:
    """corral: a cluster manager in the line of Borg."""


def build_app(modules: tuple[str, ...] = COMMAND_MODULES, only: str | None = None) -> typer.Typer:
    """The ``corral`` app with the commands of ``modules``; ``only``: of those, just the command of
    that name (typer turns every registered command into a click command before it parses, ~1 ms
    each; the one run is all ``corral jobs`` needs)."""
    built = typer.Typer(
        name="corral",
        help="corral: a cluster manager in the line of Borg.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Plain help and errors: a usage error is one line (below), and help needs no rich.
        rich_markup_mode=None,
    )
    built.callback()(_root)
    for module in modules:
        importlib.import_module(module).register(built)
    if only is not None and any(_name(c) == only for c in built.registered_commands):
        built.registered_commands = [c for c in built.registered_commands if _name(c) == only]
        built.registered_groups = []
    return built


def _name(command: Any) -> str:
    return command.name or command.callback.__name__


def modules_for(argv: list[str]) -> tuple[str, ...]:
    """Only the home of the command ``argv`` names; every module for help, flags or an unknown word."""
    home = COMMAND_HOMES.get(argv[1]) if len(argv) > 1 else None
    return (home,) if home in COMMAND_MODULES else COMMAND_MODULES


fastparams.install()
_whole: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    """``corral.cli.main.app``: the whole app, built on first use (tests and docs tools take it)."""
    global _whole
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _whole is None:
        _whole = build_app()
    return _whole


# The client commands' homes. Once such a command has returned, what its process has left to do
# is the interpreter's teardown: every module and object freed one by one, ~0.03 s of `corral jobs`
# on the 2-core machine. They start no threads and register no atexit handlers (logging, which
# does, is not loaded: tests/cli/test_startup.py), and close their files themselves, so they
# leave at once: stdout and stderr flushed, the exit code SystemExit would give. A traceback (a
# bug, Ctrl-C) still goes through the normal exit. ``corral --help`` and ``--version`` leave so too.
QUICK_EXIT = frozenset({"corral.cli.client", "corral.cli.lists", "corral.cli.allocs", "corral.cli.events",
                        "corral.cli.logs", "corral.cli.masters"})


def main() -> None:
    for name in UNUSED_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    modules = modules_for(sys.argv)
    app = build_app(modules, only=sys.argv[1] if modules != COMMAND_MODULES else None)
    quick = (len(modules) == 1 and modules[0] in QUICK_EXIT) or sys.argv[1:] in (["--help"], ["--version"])
    if not quick:
        app()
        return
    try:
        app()
        code: Any = 0
    except SystemExit as e:
        code = e.code
    leave(code)


def leave(code: Any) -> None:
    """Exit now with ``code`` as SystemExit(code) would (None: 0; not a number: printed, 1),
    skipping the interpreter's teardown; output that cannot be flushed any more (a closed
    pipe) is exit 120, as Python's own exit makes it."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away; a stream already closed
            code = code or 120
    os._exit(code)


if __name__ == "__main__":
    main()
