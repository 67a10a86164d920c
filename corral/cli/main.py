"""The ``corral`` command: one typer app; each command group lives in its own module.

Each module listed in ``COMMAND_MODULES`` exposes ``register(app)``.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES: tuple[str, ...] = (
    "corral.cli.demo",
    "corral.cli.schema",
    "corral.cli.agent",
    "corral.cli.sim",
    "corral.cli.master",
    "corral.cli.client",
    "corral.cli.up",
    "corral.cli.logs",
)

app = typer.Typer(
    name="corral",
    help="corral: a cluster manager in the line of Borg.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
