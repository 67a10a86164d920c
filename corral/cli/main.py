"""The ``corral`` command: one typer app; each command group lives in its own module.

Each module listed in ``COMMAND_MODULES`` exposes ``register(app)``. Those
modules import at their top only what registering needs (typer and the
standard library): a command's own dependencies (NumPy, the scheduler, the
simulator, rich, pydantic models, the master) are imported inside it, so a
client command such as ``corral jobs`` starts in a fraction of the time
(tests/cli/test_startup.py keeps it so).
"""

from __future__ import annotations

import importlib
import sys

import typer

from corral.cli import fastparams

COMMAND_MODULES: tuple[str, ...] = (
    "corral.cli.demo",
    "corral.cli.schema",
    "corral.cli.agent",
    "corral.cli.sim",
    "corral.cli.master",
    "corral.cli.client",
    "corral.cli.up",
    "corral.cli.masters",
    "corral.cli.ca",
    "corral.cli.logs",
)

# Optional modules that libraries the CLI uses import eagerly for features corral never uses:
# httpcore imports trio (an async library, ~40 ms) just in case a caller runs under it, and httpx
# imports its own command-line client (rich and pygments, ~40 ms). Marked missing when the
# ``corral`` command starts, unless something imported them already, they take the libraries'
# own "not installed" fallbacks.
UNUSED_OPTIONAL_MODULES = ("trio", "httpx._main")

app = typer.Typer(
    name="corral",
    help="corral: a cluster manager in the line of Borg.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
fastparams.install()


def main() -> None:
    for name in UNUSED_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    app()


if __name__ == "__main__":
    main()
