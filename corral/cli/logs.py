"""``corral logs JOB/INDEX``: a task's recent output, fetched through the master from its agent."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("logs")
    def logs(
        task: str = typer.Argument(..., help="JOB/INDEX, JOB (task 0) or a task's full name"),
        stream: str = typer.Option("stdout", "--stream", help="stdout or stderr"),
        tail: int = typer.Option(100, "--tail", "-n", help="how many of the last lines"),
    ) -> None:
        """Print the last lines a task wrote (on the machine where it runs or last ran)."""
        import httpx

        from corral.cli.config import ClientConfigError, client_settings

        if stream not in ("stdout", "stderr"):
            typer.echo(f"corral logs: --stream: expected stdout or stderr, got {stream!r}", err=True)
            raise typer.Exit(2)
        if not 1 <= tail <= 10_000:
            typer.echo(f"corral logs: --tail: expected 1..10000 lines, got {tail}", err=True)
            raise typer.Exit(2)
        if "/" not in task and task.count(".") < 3:
            task = f"{task}/0"
        try:
            addr, token = client_settings()
        except ClientConfigError as e:
            typer.echo(f"corral logs: {e}", err=True)
            raise typer.Exit(2) from None
        try:
            r = httpx.get(f"{addr}/api/v1/tasks/{task}/logs", params={"stream": stream, "tail": tail},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30.0)
        except httpx.HTTPError as e:
            typer.echo(f"corral logs: cannot reach the master at {addr}: {e}", err=True)
            raise typer.Exit(1) from None
        if r.status_code != 200:
            try:
                message = r.json().get("message") or f"HTTP {r.status_code}"
            except ValueError:
                message = f"HTTP {r.status_code}: {r.text[:200]}"
            typer.echo(f"corral logs: {message}", err=True)
            raise typer.Exit(2 if r.status_code < 500 else 1)
        typer.echo(r.text, nl=not r.text.endswith("\n") and bool(r.text))
