"""``corral ca``: the cell's certificate authority (``init``) and its certificates (``issue``)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    ca = typer.Typer(help="The cell's certificate authority: masters and agents speak HTTPS with its certificates.",
                     no_args_is_help=True)
    app.add_typer(ca, name="ca")

    @ca.command("init")
    def init(directory: Path = typer.Argument(..., help="where ca.pem and ca-key.pem go"),
             cell: str = typer.Option("corral", "--cell", help="the cell's name, in the CA's name")) -> None:
        """Make the cell's CA in DIR (ca.pem, and ca-key.pem readable by you only)."""
        from corral.cli.connect import die
        from corral.tls import TlsError, init_ca

        try:
            path = init_ca(directory, cell)
        except (TlsError, OSError) as e:
            die("ca init", str(e))
        typer.echo(f"corral ca init: the cell's CA is {path}; issue certificates with `corral ca issue {directory} NAME`")

    @ca.command("issue")
    def issue_cert(directory: Path = typer.Argument(..., help="the CA's directory (corral ca init)"),
                   name: str = typer.Argument(..., help="a master's name, an agent's machine name, or an etcd "
                                                        "member's name"),
                   role: str = typer.Option("agent", "--role", help="what it is for: master, agent or etcd (agents "
                                                                   "talk only to masters' certificates, masters take "
                                                                   "registrations only from agents')"),
                   host: list[str] = typer.Option(["127.0.0.1"], "--host", help="an IP address or DNS name it "
                                                                                 "serves on; repeat")) -> None:
        """Issue NAME.pem and NAME-key.pem, signed by the CA in DIR, for NAME in --role serving on --host."""
        from corral.cli.connect import die
        from corral.tls import TlsError, issue

        try:
            files = issue(directory, name, host, role=role)
        except (TlsError, OSError, ValueError) as e:
            die("ca issue", str(e))
        typer.echo(f"corral ca issue: {files.cert} and {files.key} ({role} {name})")
