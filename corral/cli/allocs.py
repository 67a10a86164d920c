"""``corral allocs``: alloc sets and their allocs (machine, resources, used, tasks); ``corral status
ALLOCSET`` prints one set the same way (corral.cli.client hands it here)."""

from __future__ import annotations

from typing import Any

import typer

from corral.cli.connect import calling
from corral.cli.output import Output, output_option, print_data, table

ALLOC_HEADER = ["ALLOC", "STATE", "MACHINE", "CPU USED", "MEMORY USED", "TASKS"]


def _cpu(milli: int) -> str:
    return f"{milli / 1000:g}" if milli % 1000 == 0 else f"{milli}m"


def _bytes(n: int) -> str:
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{n}B"


def alloc_rows(data: dict[str, Any]) -> list[list[Any]]:
    """One row per alloc of the set ``data`` (an AllocSetView): where, how full, which tasks (or why it waits)."""
    r = data["resources"]
    rows = []
    for a in data["allocs"]:
        used = a["used"]
        rows.append([a["alloc"], a["state"], a.get("machine") or "",
                     f"{_cpu(used['cpu'])}/{_cpu(r['cpu'])}", f"{_bytes(used['memory'])}/{_bytes(r['memory'])}",
                     ",".join(a["tasks"]) if a["tasks"] else (a.get("reason") or "")])
    return rows


def print_allocset(data: dict[str, Any], output: str) -> None:
    if print_data(data, output):
        return
    r = data["resources"]
    typer.echo(f"alloc set {data['allocset']}: {data['state']}, priority {data['priority']}, {data['count']} allocs "
               f"of cpu={_cpu(r['cpu'])} memory={_bytes(r['memory'])}"
               + (f", jobs {', '.join(data['jobs'])}" if data["jobs"] else ", no jobs in it"))
    table(alloc_rows(data), ALLOC_HEADER)


def register(app: typer.Typer) -> None:
    @app.command("allocs")
    def allocs(
        allocset: str = typer.Argument(None, help="one alloc set: NAME (yours) or NAME.USER; default: all live ones"),
        user: str = typer.Option(None, "--user", "-u"),
        all_: bool = typer.Option(False, "--all", help="ended alloc sets too"),
        output: Output = output_option(),
    ) -> None:
        """List alloc sets and their allocs: machine, resources, used, tasks."""
        with calling("allocs") as client:
            if allocset:
                return print_allocset(client.allocset(allocset), output)
            data = client.allocsets(user=user, all=all_)
        if print_data(data, output):
            return
        if not data["allocsets"]:
            typer.echo("no alloc sets")
        for i, one in enumerate(data["allocsets"]):
            if i:
                typer.echo("")
            print_allocset(one, "text")
