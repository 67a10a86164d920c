"""``corral schema``: the published JSON Schema of job specs, for editors and validators."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def schema() -> None:
        """Print the JSON Schema of a job spec (YAML or JSON)."""
        from corral.model.spec import job_spec_json_schema  # pydantic: only for this command

        typer.echo(job_spec_json_schema())
