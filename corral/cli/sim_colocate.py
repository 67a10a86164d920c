"""``corral sim colocate``: one trace in separate online and batch cells vs. one colocated cell."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from corral.cli.sim import load_trace_or_fail

COLUMNS = ("layout", "machines needed", "avg CPU usage %", "online machines CPU %", "online short s",
           "batch throttled core-s", "batch evictions", "batch on reclaimed %", "pending delay p90 s")


def register(sim: typer.Typer) -> None:
    @sim.command()
    def colocate(
        trace: str = typer.Option("synthetic", help="a trace as corral sim replay takes it: "
                                  "synthetic[:machines=N,tasks=N,hours=H], a native .jsonl file, ..."),
        path: Path = typer.Option(None, help="the trace's file or folder [default: the loader's]"),
        policy: str = typer.Option(None, help="the scheduler's policy in every cell [default: utilisation-first]"),
        seed: int = typer.Option(0, min=0, help="seed of the scheduler (and of seeded traces)"),
        until: float = typer.Option(None, min=0, help="stop at this simulated second"),
        sample_interval: float = typer.Option(None, min=0.001, help="simulated seconds between samples "
                                              "[default: 1/500 of the trace]"),
        usage_interval: float = typer.Option(None, min=0.001, help="simulated seconds between the agents' usage "
                                             "reports (reclamation) [default: 600]"),
        out: Path = typer.Option(Path("sim-out"), help="folder for the JSON, CSV and PNG outputs"),
        as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object on the last line"),
    ) -> None:
        """Machines needed, CPU usage, online shortfall, work on reclaimed room, evictions: separate vs colocated."""
        from rich.console import Console
        from rich.table import Table

        from corral.cli.sim_replay import _safe, check_policy_or_fail
        from corral.sim.experiments.colocate import DEFAULT_POLICY
        from corral.sim.experiments.colocate import colocate as run_colocate
        from corral.sim.experiments.colocate_report import write_colocate
        from corral.sim.replay import ReplayConfig

        policy = policy or DEFAULT_POLICY
        check_policy_or_fail(policy)
        console = Console(stderr=True)
        with console.status(f"loading trace {trace}"):
            loaded = load_trace_or_fail(trace, path, seed)
        config = ReplayConfig(policy=policy, seed=seed, until=until, sample_interval_s=sample_interval,
                              usage_interval_s=usage_interval)
        with console.status("replaying") as status:
            summary, runs = run_colocate(loaded, config, lambda cell, now, end: status.update(
                f"replaying the {cell} cell: {100 * now / end if end else 100:.0f} %"))
        paths = write_colocate(summary, runs, out, f"colocate_{_safe(loaded.name)}_{seed}")
        table = Table(title=f"colocation on {summary['trace']} ({summary['tasks']['online']:,} online and "
                            f"{summary['tasks']['batch']:,} batch tasks), {policy}, seed {seed}")
        for column in COLUMNS:
            table.add_column(column, justify="right")
        for name, f in summary["layouts"].items():
            table.add_row(name, str(f["machines_needed"]), _fmt(f["avg_cpu_usage_pct"]),
                          _fmt(f["online_machines_cpu_usage_pct"]), _fmt(f["online_short_s"]),
                          _fmt(f["batch_throttled_core_s"]), str(f["batch_evictions"]),
                          _fmt(f["batch_on_reclaimed_pct"]), _fmt(f["pending_delay_p90_s"]))
        Console(width=160).print(table)
        console.print(f"machines saved by colocating: {summary['machines_saved']} "
                      f"({_fmt(summary['machines_saved_pct'])} %)", highlight=False)
        for note in summary["notes"]:
            console.print(f"note: {note}", highlight=False)
        console.print(f"wrote {paths['summary']}, {paths['usage'].name}"
                      + (f", {paths['plot'].name}" if "plot" in paths else ""), highlight=False)
        print(json.dumps(summary if as_json else {"experiment": "colocate", "seconds": summary["seconds"]}))


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"
