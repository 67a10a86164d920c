"""``corral logs JOB/INDEX [-f]``: a task's recent output, fetched through the master from its agent."""

from __future__ import annotations

import typer

from corral.cli.connect import calling, die


def register(app: typer.Typer) -> None:
    @app.command("logs")
    def logs(
        task: str = typer.Argument(..., help="JOB/INDEX, JOB (task 0) or a task's full name"),
        stream: str = typer.Option("stdout", "--stream", help="stdout or stderr"),
        tail: int = typer.Option(100, "--tail", "-n", help="how many of the last lines"),
        follow: bool = typer.Option(False, "--follow", "-f", help="then print new lines as they come, until the "
                                                                   "task ends (Ctrl-C stops)"),
        interval: float = typer.Option(1.0, "--interval", help="with --follow: seconds between looks"),
    ) -> None:
        """Print the last lines a task wrote (on the machine where it runs or last ran)."""
        if stream not in ("stdout", "stderr"):
            die("logs", f"--stream: expected stdout or stderr, got {stream!r}")
        if not 1 <= tail <= 10_000:
            die("logs", f"--tail: expected 1..10000 lines, got {tail}")
        if "/" not in task and task.count(".") < 3:
            task = f"{task}/0"
        with calling("logs") as client:
            if not follow:
                text = client.logs(task, stream, tail)
                typer.echo(text, nl=not text.endswith("\n") and bool(text))
                return
            try:
                for line in client.follow_logs(task, stream, tail, poll_s=interval):
                    typer.echo(line)
            except KeyboardInterrupt:
                raise typer.Exit(0) from None
