"""``corral events [--job J] [--follow]``: the cell's event history, oldest first, and with
``--follow`` each new event as it happens."""

from __future__ import annotations

import json
from typing import Any

import typer

from corral.cli.connect import calling
from corral.cli.output import Output, output_option, print_data

HEADER_WIDTHS = (24, 18, 22)


def event_line(e: dict[str, Any]) -> str:
    """``TIME TYPE OBJECT details``: the object is the task, else the job, else the machine."""
    detail = e.get("detail") or {}
    what = e.get("task") or e.get("job") or e.get("machine") or ""
    extra = []
    if e.get("task") and e.get("machine"):
        extra.append(f"on {e['machine']}")
    for key in ("via", "generation", "note"):
        if detail.get(key) not in (None, ""):
            extra.append(f"{key}={detail[key]}" if key != "note" else str(detail[key]))
    head = f"{e['time']:<{HEADER_WIDTHS[0]}} {e['type']:<{HEADER_WIDTHS[1]}} {what}"
    return (head + "  " + " ".join(extra)).rstrip() if extra else head


def register(app: typer.Typer) -> None:
    @app.command("events")
    def events(
        job: str = typer.Option(None, "--job", "-j", help="NAME (yours) or NAME.USER"),
        user: str = typer.Option(None, "--user", "-u"),
        machine: str = typer.Option(None, "--machine", "-m"),
        type_: str = typer.Option(None, "--type", "-t", help="event types, comma-separated (task_scheduled, ...)"),
        since: str = typer.Option(None, "--since", help="from this RFC 3339 time, e.g. 2026-01-31T12:00:00Z"),
        limit: int = typer.Option(100, "--limit", "-n", help="at most this many of the newest events (1..10000)"),
        follow: bool = typer.Option(False, "--follow", "-f", help="then print each new event as it happens "
                                                                   "(Ctrl-C stops)"),
        output: Output = output_option(),
    ) -> None:
        """The cell's event history: submits, placements, ends, kills, machines up and down."""
        from corral.cli.connect import die

        if not 1 <= limit <= 10_000:
            die("events", f"--limit: expected 1..10000, got {limit}")
        filters = {"job": job, "user": user, "machine": machine, "type": type_, "since": since}
        with calling("events") as client:
            shown = _newest(client, filters, limit)
            if not follow and print_data({"events": shown}, output):
                return
            for e in shown:
                _show(e, output)
            if not follow:
                return
            cursor = shown[-1]["seq"] if shown else client.events(**filters, limit=1)["last"]
            try:
                for e in client.watch(**{**filters, "since": None}, cursor=cursor):
                    _show(e, output)
            except KeyboardInterrupt:
                raise typer.Exit(0) from None


def _newest(client: Any, filters: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` matching events, oldest first (paging from the oldest kept)."""
    out: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = client.events(**filters, cursor=cursor, limit=10_000 if limit > 1000 else 1000)
        out = (out + page["events"])[-limit:]
        if page["next"] >= page["last"] or not page["events"] and page["next"] == cursor:
            return out
        cursor = page["next"]


def _show(e: dict[str, Any], output: str) -> None:
    if output == "json":
        typer.echo(json.dumps(e, sort_keys=True))
    elif output == "yaml":
        print_data([e], "yaml")
    else:
        typer.echo(event_line(e))
