"""How commands print: ``-o text|json|yaml|wide`` (a choice the option parser checks, listed in
``--help``), tables, and ``--watch``'s rows that changed."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Literal

import typer

# typer turns the Literal into a choice: a value not listed is refused by the parser (exit 2) and
# --help shows <text|json|yaml|wide>. corral.cli.fastparams passes a listed value through as is.
Output = Literal["text", "json", "yaml", "wide"]
OUTPUT_HELP = "text (a table), wide (a table with more columns), json or yaml (the API's reply)"


def output_option() -> Any:
    return typer.Option("text", "--output", "-o", help=OUTPUT_HELP)


def print_data(data: Any, output: str) -> bool:
    """Print ``data`` as JSON or YAML when ``output`` asks for it; False for the text forms."""
    if output == "json":
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    elif output == "yaml":
        import yaml  # only for -o yaml

        typer.echo(yaml.safe_dump(data, sort_keys=True, default_flow_style=False).rstrip("\n"))
    else:
        return False
    return True


def cells(row: list[Any]) -> list[str]:
    return ["" if c is None else str(c) for c in row]


def widths(rows: list[list[str]], header: list[str]) -> list[int]:
    return [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]


def line(row: list[str], sizes: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(row, sizes)).rstrip()


def table(rows: list[list[Any]], header: list[str]) -> None:
    shown = [cells(r) for r in rows]
    sizes = widths(shown, header)
    typer.echo("\n".join(line(row, sizes) for row in [header, *shown]))  # one write, not one a row


def watch_rows(fetch: Callable[[], list[tuple[str, list[Any], Any]]], header: list[str], interval_s: float,
               output: str = "text") -> None:
    """``--watch``: the table once, then every ``interval_s`` each row that is new or changed (as
    ``kubectl get --watch`` does), until Ctrl-C. ``fetch`` gives ``(key, row, object)`` triples;
    with ``-o json`` or ``yaml`` each new or changed object is printed instead (JSON: one a line)."""
    last: dict[str, list[str]] = {}
    sizes: list[int] | None = None
    try:
        while True:
            rows = [(key, cells(row), obj) for key, row, obj in fetch()]
            changed = [(key, row, obj) for key, row, obj in rows if last.get(key) != row]
            for key, row, obj in changed:
                if output == "json":
                    typer.echo(json.dumps(obj, sort_keys=True))
                elif output == "yaml":
                    print_data([obj], "yaml")
                else:
                    if sizes is None:
                        sizes = widths([r for _, r, _ in rows], header)
                        typer.echo(line(header, sizes))
                    typer.echo(line(row, sizes))
            if sizes is None and output not in ("json", "yaml"):
                sizes = widths([r for _, r, _ in rows], header)
                typer.echo(line(header, sizes))
            last.update((key, row) for key, row, _ in changed)
            time.sleep(interval_s)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
