"""``corral sim replay``: one trace through the master and scheduler under a virtual clock."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from corral.cli.sim import fail, load_trace_or_fail


def check_policy_or_fail(policy: str) -> None:
    from corral.sched.policy import PolicyError, make_policy

    try:
        make_policy(policy)
    except PolicyError as e:
        fail(f"--policy: {e}")


def register(sim: typer.Typer) -> None:
    @sim.command()
    def replay(
        trace: str = typer.Option("openb", help="openb, dlrm, alibaba-batch, azure, synthetic[:machines=N,tasks=N,"
                                  "hours=H] or a native .jsonl trace file"),
        path: Path = typer.Option(None, help="the trace's file or folder [default: ../shared/traces/...]"),
        policy: str = typer.Option(None, help="a corral policy: hybrid (default), best-fit, worst-fit, random, "
                                   "or scorer=weight pairs"),
        seed: int = typer.Option(0, min=0, help="seed of the scheduler (and of seeded traces)"),
        round_interval: float = typer.Option(1.0, min=0.001, help="simulated seconds between scheduling rounds"),
        until: float = typer.Option(None, min=0, help="stop at this simulated second [default: when nothing is "
                                    "left to happen]"),
        sample_interval: float = typer.Option(None, min=0.001, help="simulated seconds between metric samples "
                                              "[default: 1/500 of the trace]"),
        out: Path = typer.Option(Path("sim-out"), help="folder for the JSON, CSV and PNG outputs"),
        as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object on the last line"),
    ) -> None:
        """Replay a trace through corral's own master and scheduler under a virtual clock."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from corral.sched.policy import DEFAULT_POLICY
        from corral.sim.replay import Replay, ReplayConfig
        from corral.sim.report import write_replay

        policy = policy or DEFAULT_POLICY
        check_policy_or_fail(policy)
        console = Console(stderr=True)
        with console.status(f"loading trace {trace}"):
            loaded = load_trace_or_fail(trace, path, seed)
        config = ReplayConfig(policy=policy, seed=seed, round_interval_s=round_interval, until=until,
                              sample_interval_s=sample_interval)
        sim = Replay(loaded, config)
        bar = Progress(TextColumn(f"replay {loaded.name} ({loaded.task_count():,} tasks, "
                                  f"{len(loaded.machines):,} machines)"), BarColumn(),
                       TextColumn("{task.percentage:>3.0f}% of the trace"), TimeElapsedColumn(),
                       console=console, transient=True)
        with bar:
            job = bar.add_task("replay", total=1.0)
            result = sim.run(lambda now, end: bar.update(job, completed=now / end if end else 1.0))
        stem = f"replay_{_safe(loaded.name)}_{_safe(policy)}_{seed}"
        paths = write_replay(result, out, stem)
        summary = {"experiment": "replay", **result.summary, "seconds": round(result.seconds, 3),
                   "events_per_s": round(result.events / max(result.seconds, 1e-9), 1)}
        _show(summary, result, paths, console)
        if as_json:
            print(json.dumps(summary))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _show(summary, result, paths, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"replay of {summary['trace']} with {summary['policy']} (seed {summary['seed']})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    delay = summary["pending_delay_s"]
    rounds = sorted(result.round_seconds) or [0.0]
    rows = [
        ("machines / jobs / tasks", f"{summary['machines']:,} / {summary['jobs']:,} / {summary['tasks']:,}"),
        ("simulated", f"{summary['simulated_s'] / 3600:,.1f} h"),
        ("placements (started)", f"{summary['placements']:,}"),
        ("finished", f"{summary['finished']:,}"),
        ("pending delay p50 / p90 / p99", f"{delay['p50']:.1f} / {delay['p90']:.1f} / {delay['p99']:.1f} s"),
        ("CPU allocated mean / peak", f"{100 * summary['allocation']['cpu']['mean']:.1f} / "
                                      f"{100 * summary['allocation']['cpu']['peak']:.1f} %"),
        ("memory allocated mean / peak", f"{100 * summary['allocation']['memory']['mean']:.1f} / "
                                         f"{100 * summary['allocation']['memory']['peak']:.1f} %"),
        ("GPU allocated mean / peak", f"{100 * summary['allocation']['gpu']['mean']:.1f} / "
                                      f"{100 * summary['allocation']['gpu']['peak']:.1f} %"),
        ("preemptions", f"{summary['preemptions']:,}"),
        ("never ran / pending at end", f"{summary['never_ran']:,} / {summary['pending_at_end']:,}"),
        ("scheduling rounds", f"{summary['rounds']:,}"),
        ("round wall time p50 / p99 / max", f"{1000 * rounds[len(rounds) // 2]:.2f} / "
                                            f"{1000 * rounds[min(len(rounds) - 1, int(len(rounds) * 0.99))]:.2f} / "
                                            f"{1000 * rounds[-1]:.2f} ms"),
        ("wall time", f"{summary['seconds']:.2f} s ({summary['events_per_s']:,.0f} events/s)"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for note in summary["notes"]:
        console.print(f"note: {note}", highlight=False)
    pictures = (f"{paths['utilization'].name}, {paths['pending_delay'].name}" if "utilization" in paths
                else "no PNGs (they need matplotlib: pip install 'corral[sim]')")
    console.print(f"wrote {paths['summary']}, {pictures} and CSVs", markup=False,
                  highlight=False)
