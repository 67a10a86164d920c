"""``corral masters``: each of the cell's masters, its role, pid and how far it has applied the log."""

from __future__ import annotations

import json

import typer


def list_masters(addrs: list[str], token: str, ca: str | None = None) -> list[dict]:
    """One row per address: ``GET /api/v1/master`` of that master alone (no redirect followed);
    a master that does not answer is ``unreachable`` with the reason."""
    from corral.client.errors import ApiError
    from corral.client.transport import Transport

    rows = []
    for addr in addrs:
        with Transport(addr, token, timeout_s=3.0, connect_timeout_s=1.0, ca=ca) as client:
            try:
                rows.append({**client.call("GET", "/master"), "url": client.addr})
            except ApiError as e:
                rows.append({"url": client.addr, "role": "unreachable", "pid": None, "applied": None,
                             "leader": None, "error": e.message})
    return rows


def register(app: typer.Typer) -> None:
    @app.command("masters")
    def masters(output: str = typer.Option("text", "--output", "-o", help="text or json")) -> None:
        """List the cell's masters: URL, role (leader or follower), pid, applied log position."""
        from corral.cli.config import ClientConfigError, client_ca, client_settings
        from corral.cli.connect import die

        if output not in ("text", "json"):
            die("masters", f"--output: expected text or json, got {output!r}")
        try:
            addr, token = client_settings()
        except ClientConfigError as e:
            die("masters", str(e))
        rows = list_masters([a for a in addr.split(",") if a.strip()], token, client_ca())
        if output == "json":
            typer.echo(json.dumps({"masters": rows}, indent=2))
            return
        typer.echo(f"{'URL':<32} {'ROLE':<12} {'PID':>8} {'APPLIED':>10}")
        for row in rows:
            pid = "" if row.get("pid") is None else str(row["pid"])
            applied = "" if row.get("applied") is None else str(row["applied"])
            typer.echo(f"{row['url']:<32} {row['role']:<12} {pid:>8} {applied:>10}"
                       + (f"  {row['error']}" if row.get("error") else ""))
        if not any(row["role"] == "leader" for row in rows):
            raise typer.Exit(1)
