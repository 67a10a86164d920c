"""``corral agent``: run this machine's agent (Borg's Borglet)."""

from __future__ import annotations

from pathlib import Path

import typer

from corral.logwords import LogFormat, LogLevel


def read_token_file(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace dropped); ValueError naming the file otherwise."""
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--token-file: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not token or len(token.split()) != 1:
        raise ValueError(f"--token-file: expected one token in {path}")
    return token


def register(app: typer.Typer) -> None:
    @app.command("agent")
    def agent(
        master: str = typer.Option(..., "--master", help="the master's URL, e.g. http://127.0.0.1:7100 (several, "
                                                         "comma-separated, for a replicated master)"),
        name: str = typer.Option(..., "--name", help="this machine's name in the cell"),
        capacity: str = typer.Option("", "--capacity", help="e.g. cpu=8,memory=16Gi; detected when not given"),
        port: int = typer.Option(0, "--port", help="port for the agent's API on 127.0.0.1 (0: any free port)"),
        listen: str = typer.Option(None, "--listen", help="HOST:PORT for the agent's API (instead of --port)"),
        advertise: str = typer.Option("", "--advertise", help="the URL the masters use for this agent; "
                                                              "default http://HOST:PORT as served"),
        token: str = typer.Option("", "--token", envvar="CORRAL_AGENT_TOKEN",
                                  help="the agent bearer token; prefer CORRAL_AGENT_TOKEN or --token-file "
                                       "(a command line is visible to every user in ps)"),
        token_file: Path = typer.Option(None, "--token-file", help="a file holding the agent bearer token"),
        state_dir: Path = typer.Option(None, "--state-dir", help="logs and task directories; default ./corral-agent-<name>"),
        attributes: str = typer.Option("", "--attributes", help="machine labels, e.g. rack=r1,power=p2"),
        gpu_model: str = typer.Option("", "--gpu-model"),
        isolation: str = typer.Option(None, "--isolation", help="force cgroup-v2, cgroup-v1 or rlimit"),
        cgroup_root: str = typer.Option("", "--cgroup-root", help="cgroup directory under each controller mount; default corral-<name>"),
        memory_pressure: float = typer.Option(0.95, "--memory-pressure", help="fraction of machine memory in use at which to evict"),
        kill_grace: float = typer.Option(10.0, "--kill-grace", help="seconds between SIGTERM and SIGKILL"),
        colocation: bool = typer.Option(True, "--colocation/--no-colocation",
                                        help="throttle batch tasks while latency-sensitive ones need the CPU"),
        log_max_bytes: str = typer.Option("10Mi", "--log-max-bytes"),
        log_keep: int = typer.Option(3, "--log-keep", help="rotated log files kept per stream"),
        run_as: str = typer.Option("auto", "--run-as", help="who tasks run as: auto (per-user when the agent is root, "
                                                             "else the agent's user), per-user (each job user's own "
                                                             "unprivileged uid), shared (--task-user) or agent "
                                                             "(the agent's own user, root included)"),
        task_user: str = typer.Option("corral-task", "--task-user", help="the unprivileged account for tasks that "
                                                                         "name no user and for --run-as shared; "
                                                                         "created when missing"),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="the same as --log-level debug"),
        log_format: LogFormat = typer.Option("text", "--log-format", help="text lines or JSON lines"),
        log_level: LogLevel = typer.Option("info", "--log-level"),
        tls_cert: Path = typer.Option(None, "--tls-cert", help="this machine's certificate from the cell's CA "
                                                              "(its common name is --name); with --tls-key, --tls-ca"),
        tls_key: Path = typer.Option(None, "--tls-key"),
        tls_ca: Path = typer.Option(None, "--tls-ca", help="the cell's CA certificate"),
    ) -> None:
        """Run the agent for this machine: register with the master, run the tasks it is given."""
        from corral.agent.config import AgentConfig, ConfigError, parse_attributes, parse_capacity
        from corral.agent.daemon import run
        from corral.model.quantity import QuantityError, parse_bytes

        from corral.logfmt import setup as setup_logging

        setup_logging(log_format, "debug" if verbose else log_level)
        from corral.cli.master import tls_files

        tls = tls_files("agent", tls_cert, tls_key, tls_ca)
        host = "127.0.0.1"
        try:
            if token_file is not None:
                token = read_token_file(token_file)
            if listen is not None:
                from corral.cli.cellconfig import split_listen

                host, port = split_listen(listen)
            config = AgentConfig(
                name=name, master=master, token=token, host=host, advertise=advertise, tls=tls,
                state_dir=state_dir or Path(f"corral-agent-{name}"), port=port,
                capacity=parse_capacity(capacity) if capacity else {},
                attributes=parse_attributes(attributes), gpu_model=gpu_model,
                cgroup_root=cgroup_root, isolation=isolation,
                memory_pressure_threshold=memory_pressure, kill_grace_s=kill_grace, colocation=colocation,
                log_max_bytes=parse_bytes(log_max_bytes), log_keep=log_keep, run_as=run_as, task_user=task_user,
            )
        except (ConfigError, QuantityError, ValueError) as e:
            typer.echo(f"corral agent: {e}", err=True)
            raise typer.Exit(2) from None
        run(config)
