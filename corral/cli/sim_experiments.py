"""``corral sim compaction|segregate|buckets|reclaim``: Borg §5 experiments on a trace checkpoint
(corral/sim/experiments/README.md). Hooked into ``corral sim`` by :func:`register`."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from corral.cli.sim import fail, load_trace_or_fail

TraceOpt = Annotated[str, typer.Option("--trace", help="trace name: openb, dlrm, alibaba-batch, azure, synthetic")]
PathOpt = Annotated[Optional[Path], typer.Option("--path", help="the trace's file or folder [default: the loader's]")]
PolicyOpt = Annotated[Optional[list[str]], typer.Option(
    "--policy", help="scheduling policy; repeat it or separate presets with commas to compare [default: hybrid]")]
TrialsOpt = Annotated[int, typer.Option("--trials", help="trials (seeds seed, seed+1, ...)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="base seed: trial i uses seed + i; also the trace loader's seed")]
AtOpt = Annotated[str, typer.Option("--at", help="checkpoint time in seconds, or 'peak' (largest requested dominant share)")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", help="worker processes [default: min(trials, CPUs)]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as one JSON line")]
OutOpt = Annotated[Path, typer.Option("--out", help="folder for the plot")]
PlotOpt = Annotated[Optional[Path], typer.Option("--plot", help="PNG file of the plot [default: OUT/<experiment>.png]")]
OverflowOpt = Annotated[bool, typer.Option(
    "--keep-overflow", help="keep the snapshot's tasks the trace's cell cannot hold (the cell grows by clones)")]
MarginOpt = Annotated[float, typer.Option("--margin", help="the master's reservation margin: reservations decay "
                                                              "to usage x (1 + margin), at most the limit")]


def _check(trials: int, seed: int, at: str, workers: int | None, margin: float) -> None:
    if trials < 1:
        fail(f"--trials: expected an integer >= 1, got {trials}")
    if seed < 0:
        fail(f"--seed: expected an integer >= 0, got {seed}")
    if workers is not None and workers < 1:
        fail(f"--workers: expected an integer >= 1, got {workers}")
    if not math.isfinite(margin) or margin < 0:
        fail(f"--margin: expected a number >= 0, got {margin}")
    if at != "peak":
        try:
            ok = math.isfinite(float(at)) and float(at) >= 0
        except ValueError:
            ok = False
        if not ok:
            fail(f"--at: expected a time in seconds >= 0 or 'peak', got {at!r}")


def _main(experiment: str, trace: str, path: Path | None, policy: list[str] | None, trials: int, seed: int, at: str,
          workers: int | None, as_json: bool, out: Path, plot: Path | None, **options) -> None:
    _check(trials, seed, at, workers, options.get("margin", 0.0))
    keep_overflow = options.pop("keep_overflow", False)
    from corral.sched.policy import PolicyError
    from corral.sim.experiments.run import WORKLOADS, parse_policies, run

    try:
        policies = parse_policies(policy or ["hybrid"])
    except PolicyError as e:
        fail(f"--policy: {e}")
    loaded = load_trace_or_fail(trace, path, seed)
    seeds = [seed + i for i in range(trials)]
    workers = workers or min(trials, os.cpu_count() or 1)
    bar, advance = _progress(experiment, WORKLOADS[experiment] * len(policies) * trials)
    with bar:
        result = run(experiment, loaded, policies, seeds, at, workers, plot or out / f"{experiment}.png",
                     advance, keep_overflow, **options)
    if as_json:
        print(json.dumps(result))
    else:
        _print(result)


def _progress(what: str, total: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # No refresh thread (auto_refresh off): the trials run in forked processes.
    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[last]}"), console=Console(stderr=True), transient=True,
                   auto_refresh=False)
    task = bar.add_task(what, total=total, last="")

    def advance(key, trial) -> None:
        workload, policy, seed = key
        bar.update(task, advance=1, last=f"{workload}/{policy}/seed {seed}: {trial.min_machines} machines")
        bar.refresh()

    return bar, advance


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console()
    table = Table(title=f"{result['experiment']}: {result['trace']} at t={result['at']:g} s, {result['tasks']} tasks, "
                        f"cell of {result['machines']} machines, seeds {result['seeds'][0]}..{result['seeds'][-1]}")
    for column in ("policy", "workload", "minimum cell per trial", "p90", "p90 % of cell", "mean"):
        table.add_column(column)
    derived = []
    for policy, figures in result["policies"].items():
        sizes = {"checkpoint": figures} if "p90" in figures else {k: v for k, v in figures.items()
                                                                   if isinstance(v, dict) and "p90" in v}
        for workload, s in sizes.items():
            table.add_row(policy, workload, " ".join(str(m) for m in s["min_machines"]), str(s["p90"]),
                          str(s["p90_pct"]), str(s["mean"]))
        derived += [f"{policy} {k}: {v}" for k, v in figures.items() if k not in sizes and "p90" not in figures]
    out.print(table)
    for line in derived + [f"{k}: {result[k]}" for k in ("extra_requested_pct",) if k in result]:
        out.print(line, highlight=False)
    for note in result["notes"]:
        out.print(f"note: {note}", highlight=False)
    out.print(f"plot {result.get('plot')}; {result['events']} master events in {result['seconds']} s "
              f"({result['events_per_s']} events/s)", highlight=False)


def register(sim_app: typer.Typer) -> None:
    @sim_app.command()
    def compaction(trace: TraceOpt = "synthetic", path: PathOpt = None, policy: PolicyOpt = None,
                   trials: TrialsOpt = 11, seed: SeedOpt = 0, at: AtOpt = "peak", workers: WorkersOpt = None,
                   as_json: JsonOpt = False, out: OutOpt = Path("."), plot: PlotOpt = None,
                   keep_overflow: OverflowOpt = False) -> None:
        """Borg §5.1: the smallest cell that holds the checkpoint (≤ 0.2 % of tasks pending), p90 over trials."""
        _main("compaction", trace, path, policy, trials, seed, at, workers, as_json, out, plot,
              keep_overflow=keep_overflow)

    @sim_app.command()
    def segregate(trace: TraceOpt = "synthetic", path: PathOpt = None, policy: PolicyOpt = None,
                  trials: TrialsOpt = 11, seed: SeedOpt = 0, at: AtOpt = "peak", workers: WorkersOpt = None,
                  as_json: JsonOpt = False, out: OutOpt = Path("."), plot: PlotOpt = None,
                  keep_overflow: OverflowOpt = False) -> None:
        """Borg §5.2: extra machines if production and non-production work ran in separate cells."""
        _main("segregate", trace, path, policy, trials, seed, at, workers, as_json, out, plot,
              keep_overflow=keep_overflow)

    @sim_app.command()
    def buckets(trace: TraceOpt = "synthetic", path: PathOpt = None, policy: PolicyOpt = None,
                trials: TrialsOpt = 11, seed: SeedOpt = 0, at: AtOpt = "peak", workers: WorkersOpt = None,
                as_json: JsonOpt = False, out: OutOpt = Path("."), plot: PlotOpt = None,
                keep_overflow: OverflowOpt = False) -> None:
        """Borg §5.3: extra machines and resources if cpu and memory requests were rounded up to powers of two."""
        _main("buckets", trace, path, policy, trials, seed, at, workers, as_json, out, plot,
              keep_overflow=keep_overflow)

    @sim_app.command()
    def reclaim(trace: TraceOpt = "synthetic", path: PathOpt = None, policy: PolicyOpt = None,
                trials: TrialsOpt = 11, seed: SeedOpt = 0, at: AtOpt = "peak", workers: WorkersOpt = None,
                as_json: JsonOpt = False, out: OutOpt = Path("."), plot: PlotOpt = None,
                keep_overflow: OverflowOpt = False, margin: MarginOpt = 0.1) -> None:
        """Borg §5.5: machines needed with and without resource reclamation (the master's reservations, over time)."""
        _main("reclaim", trace, path, policy, trials, seed, at, workers, as_json, out, plot,
              keep_overflow=keep_overflow, margin=margin)
