"""Serving a local cell in the foreground (``corral up``): what runs where, the demo (corral.cli.updemo),
supervision."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import typer

from corral.cli.up import LocalCell
from corral.cli.up_replicated import ReplicatedCell


def make_cell(replicas: int, directory: Path, **kw: Any) -> LocalCell:
    """One master on SQLite, or ``replicas`` masters on a local etcd cluster (which needs etcd)."""
    if replicas == 1:
        return LocalCell(directory, **kw)
    from corral.store.etcd_cluster import EtcdMissing, etcd_binary

    try:
        etcd_binary()
    except EtcdMissing as e:
        typer.echo(f"corral up: --replicas {replicas}: {e}", err=True)
        raise typer.Exit(2) from None
    return ReplicatedCell(directory, replicas=replicas, **kw)


def serve(cell: LocalCell, agents: int, write_config: bool, demo: bool, reaper: bool, stop: threading.Event,
          echo, examples: Path | None = None) -> int:
    """Print where everything is, run the demo if asked, and keep the cell until ``stop``; the exit
    code (1: the cell could not go on)."""
    from corral.cli.config import write_config as save_config

    config = save_config(cell.url, cell.admin_token, cell.ca) if write_config else None
    echo(f"corral up: a local cell of {agents} machines (stop with Ctrl-C)")
    if isinstance(cell, ReplicatedCell):
        for row in cell.masters_now():
            echo(f"  {row['name']:<10} {row['url']}   {row['role']:<9} log {cell.dir / 'logs' / (row['name'] + '.log')}")
        echo(f"  store      {cell.store_url}   tokens {cell.dir / 'tokens.yaml'}")
    else:
        echo(f"  master     {cell.url}   log {cell.dir / 'logs' / 'master.log'}")
        echo(f"  store      sqlite:///{cell.dir / 'state.db'}   tokens {cell.dir / 'tokens.yaml'}")
    echo(f"  web UI     {cell.url.split(',')[0]}/ui   (sign in with a token of {cell.dir / 'tokens.yaml'})")
    for m in sorted(cell.machines_up(), key=lambda m: m["name"]):
        echo(f"  agent {m['name']:<4} {m['address']}   log {cell.dir / 'logs' / (m['name'] + '.log')}")
    if config is not None:
        echo(f"  CLI config {config} (user {cell.user}, admin)")
    if not demo:  # the demo names its own jobs to try
        echo("  try:       corral submit examples/prep.yaml && corral jobs && corral why prep && corral logs prep/0")
    if not reaper:
        echo("  (not a child subreaper: tasks orphaned by a killed agent may outlive the cell)")
    if demo and not stop.is_set():
        from corral.cli.updemo import demo as run_demo

        echo("corral up: --demo: submitting the example jobs")
        run_demo(cell, echo, examples)
    while not stop.wait(0.5):
        why = cell.supervise()
        if why is not None:
            typer.echo(f"corral up: {why}; stopping the cell", err=True)
            return 1
    return 0
