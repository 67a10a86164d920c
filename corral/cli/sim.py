"""``corral sim``: trace-driven experiments. ``corral sim openb`` runs the FGD (ATC'23) benchmark
on Alibaba's openb GPU trace through corral's scheduler (corral/sim/openb/README.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NoReturn

import typer

# rich is imported inside the commands that draw with it: every corral command imports this
# module (to register ``corral sim``), most never draw.


class SeedError(ValueError):
    pass


def parse_seeds(text: str) -> list[int]:
    """``42-51``, ``42`` or ``42,44,47`` -> a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            lo, sep, hi = part.partition("-")
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise SeedError(f"seed range {part!r} runs backwards")
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
    except ValueError as e:
        if isinstance(e, SeedError):
            raise
        raise SeedError(f"seeds must look like 42-51, 42 or 42,44,47; got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise SeedError(f"seeds must be non-negative integers; got {text!r}")
    return seeds


def fail(message: str) -> NoReturn:
    """One line on stderr, ``error: <message>``, and exit code 2."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(2)


def load_trace_or_fail(name: str, path: Path | None, seed: int):
    """The trace (corral.sim.traces.load_trace); a missing or malformed file or a bad name is one line
    naming it, and exit code 2."""
    from corral.sim.trace import TraceError
    from corral.sim.traces import load_trace

    try:
        return load_trace(name, str(path) if path is not None else None, seed=seed)
    except TraceError as e:
        fail(str(e))
    except OSError as e:
        fail(f"{e.filename or path}: {e.strerror or e}")
    except (ValueError, KeyError) as e:
        fail(f"--trace {name}: {e}")


def _progress(console: Console, total: int, what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[last]}"), console=console, transient=True)
    task = bar.add_task(what, total=total, last="")

    def advance(result) -> None:
        bar.update(task, advance=1, last=f"{result.workload}/{result.policy}/{result.seed}: "
                   f"{result.alloc.get(130)} % at 130 ({result.seconds:.1f} s)")

    return bar, advance


def register(app: typer.Typer) -> None:
    sim = typer.Typer(help="Trace-driven experiments with corral's scheduler.", no_args_is_help=True)
    app.add_typer(sim, name="sim")
    from corral.cli import sim_apollo, sim_colocate, sim_experiments, sim_fairness, sim_omega, sim_replay

    sim_replay.register(sim)
    sim_experiments.register(sim)
    sim_fairness.register(sim)
    sim_colocate.register(sim)
    sim_omega.register(sim)
    sim_apollo.register(sim)

    @sim.command()
    def openb(
        workload: str = typer.Option("default", help="openb pod list, with or without the openb_pod_list_ prefix"),
        policy: str = typer.Option(None, help="random, dot-product, gpu-clustering, gpu-packing, best-fit, fgd, "
                                   "corral (the default), or any corral policy spec (a preset or "
                                   "scorer=weight pairs)"),
        seeds: str = typer.Option("42-51", help="seeds: 42-51, 42 or 42,44"),
        trace_dir: Path = typer.Option(None, help="folder of the openb CSVs [default: ../shared/traces/"
                                       "alibaba-gpu-v2023/csv beside the repository]"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object on the last line"),
        compare: bool = typer.Option(False, "--compare", help="all 17 paper workloads x the paper's 6 policies "
                                     "+ corral's, vs the artifact; plus corral's policy on the 7 other workloads"),
        processes: int = typer.Option(2, min=1, help="worker processes"),
        figure: Path = typer.Option(Path("openb_allocation.png"), help="PNG of the allocation curves (--compare)"),
        results: Path = typer.Option(None, help="JSON-lines file of run results: reused and extended (--compare)"),
        rebalance: bool = typer.Option(False, "--rebalance", help="each seed with and without corral's rebalancer: "
                                       "allocation at 130 %, fragmentation, moves, and the LP bound on allocation "
                                       "(docs/openb.md); prints JSON"),
        rebalance_interval: int = typer.Option(200, min=1, help="pods between defragmenting passes (--rebalance)"),
        rebalance_moves: int = typer.Option(16, min=0, help="moves per rebalancing pass (--rebalance)"),
    ) -> None:
        """Replay openb through corral's scheduler: GPU allocation vs arrived demand, as in the FGD paper."""
        from rich.console import Console

        from corral.sim.openb.loader import WorkloadError, default_trace_dir, normalise_workload
        from corral.sched.policy import PolicyError
        from corral.sim.openb.policies import CORRAL_POLICY, check_openb_policy

        trace_dir = trace_dir or default_trace_dir()
        try:
            seed_list = parse_seeds(seeds)
        except SeedError as e:
            fail(f"--seeds: {e}")
        policy = policy or CORRAL_POLICY
        try:
            check_openb_policy(policy)
        except PolicyError as e:
            fail(f"--policy: {e}")
        try:
            workload = normalise_workload(workload, trace_dir)
        except WorkloadError as e:
            fail(f"--workload: {e}")
        console = Console(stderr=True)
        if compare:
            _compare(trace_dir, seed_list, processes, figure, results, as_json, console)
            return
        if rebalance:
            _rebalance(trace_dir, workload, policy, seed_list, rebalance_interval, rebalance_moves)
            return
        _single(trace_dir, workload, policy, seed_list, processes, as_json, console)


def _rebalance(trace_dir, workload, policy, seeds, interval, moves) -> None:
    import time

    from rich.console import Console
    from rich.table import Table

    from corral.sim.openb.rebalance import OpenbRebalance, compare_rebalance

    start = time.perf_counter()
    out = compare_rebalance(trace_dir, workload, policy, seeds, OpenbRebalance(interval=interval, max_moves=moves))
    table = Table(title=f"openb {workload}, policy {policy}, seeds {seeds[0]}..{seeds[-1]}: the rebalancer")
    for column in ("", "GPU alloc % at 130", "frag % at 90", "frag % at 130", "moves"):
        table.add_column(column)
    for side in ("without", "with"):
        row = out[side]
        table.add_row(side, *(str(row[k]) for k in ("alloc_130", "frag_ratio_90", "frag_ratio_130", "moves")))
    table.add_row("LP bound", f"{out['bound']['min']} .. {out['bound']['max']}", "", "", "")
    Console(stderr=True).print(table)
    out["seconds"] = round(time.perf_counter() - start, 3)
    print(json.dumps(out))


def _single(trace_dir, workload, policy, seeds, processes, as_json, console) -> None:
    from rich.console import Console
    from rich.table import Table

    from corral.sim.openb.compare import artifact_stats, run_many, summarise

    bar, advance = _progress(console, len(seeds), f"{workload} {policy}")
    with bar:
        results = run_many(trace_dir, [(workload, policy, s) for s in seeds], processes, advance)
    summary = summarise(results)
    art = artifact_stats(trace_dir, workload, policy)
    if art:
        summary["artifact"] = {"130": {"mean": round(art[0], 3), "stdev": round(art[1], 3)}}
    if as_json:
        print(json.dumps(summary))
        return
    out = Console()
    table = Table(title=f"openb {workload}, policy {policy}, seeds {seeds[0]}..{seeds[-1]}: GPU allocation %")
    table.add_column("arrived %")
    table.add_column("mean ± stdev")
    for x, cell in summary["alloc"].items():
        table.add_row(x, f"{cell['mean']:.2f} ± {cell['stdev']:.2f}")
    out.print(table)
    if art:
        out.print(f"artifact at 130 %: {art[0]:.2f} ± {art[1]:.2f}")
    out.print(f"frag ratio at 90 %: {summary['frag_ratio']['90']['mean']:.2f} %; placed {summary['placed']:.0f}, "
              f"failed {summary['failed']:.0f}, CPU-only placed {summary['cpu_only_placed']:.0f} (mean per run); "
              f"{summary['seconds_per_run']:.2f} s per run")


def _compare(trace_dir, seeds, processes, figure, results_file, as_json, console) -> None:
    from rich.console import Console
    from rich.table import Table

    from corral.sim.openb.compare import comparison_rows, run_many
    from corral.sim.openb.loader import EXTRA_WORKLOADS, PAPER_WORKLOADS
    from corral.sim.openb.policies import CORRAL_POLICY, PAPER_POLICIES

    from corral.sim.plotting import have_matplotlib

    if have_matplotlib():
        from corral.sim.openb.plot import plot_curves  # matplotlib: the [sim] extra
    policies = list(PAPER_POLICIES) + [CORRAL_POLICY]
    runs = [(w, p, s) for w in PAPER_WORKLOADS for p in policies for s in seeds]
    runs += [(w, CORRAL_POLICY, s) for w in EXTRA_WORKLOADS for s in seeds]
    start = time.perf_counter()
    bar, advance = _progress(console, len(runs), "openb compare")
    with bar:
        results = run_many(trace_dir, runs, processes, advance, results_file)
    rows = comparison_rows(trace_dir, results)
    paper = [r for r in results if r.workload in PAPER_WORKLOADS]
    path = plot_curves(paper, figure, trace_dir) if have_matplotlib() else None
    by = {(r["workload"], r["policy"]): r for r in rows}
    out = Console(width=200)
    table = Table(title=f"GPU allocation % at 130 % arrived, seeds {seeds[0]}..{seeds[-1]}: corral vs artifact "
                  "(✓ = within one artifact stdev or 0.3 pp)")
    table.add_column("workload")
    for p in policies:
        table.add_column(p, justify="right")
    matched = total = 0
    for w in PAPER_WORKLOADS:
        cells = []
        for p in policies:
            r = by.get((w, p))
            if r is None:
                cells.append("")
            elif "artifact_mean" in r:
                total += 1
                matched += r["match"]
                cells.append(f"{r['mean']:.2f} / {r['artifact_mean']:.2f}±{r['artifact_stdev']:.2f} "
                             f"{'✓' if r['match'] else '✗'}")
            else:
                fgd = by.get((w, "fgd"))
                gain = f" ({r['mean'] - fgd['mean']:+.2f})" if fgd else ""
                cells.append(f"{r['mean']:.2f}{gain}")
        table.add_row(w, *cells)
    out.print(table)
    corral = [by[(w, CORRAL_POLICY)]["mean"] for w in PAPER_WORKLOADS if (w, CORRAL_POLICY) in by]
    fgd = [by[(w, "fgd")]["mean"] for w in PAPER_WORKLOADS if (w, "fgd") in by]
    fgd_art = [by[(w, "fgd")]["artifact_mean"] for w in PAPER_WORKLOADS if "artifact_mean" in by.get((w, "fgd"), {})]
    extra = Table(title=f"corral's policy on the workloads outside the paper's matrix")
    extra.add_column("workload")
    extra.add_column("mean ± stdev at 130 %", justify="right")
    for w in EXTRA_WORKLOADS:
        r = by.get((w, CORRAL_POLICY))
        if r:
            extra.add_row(w, f"{r['mean']:.2f} ± {r['stdev']:.2f}")
    out.print(extra)
    summary = {
        "fidelity_matched": matched, "fidelity_cells": total,
        "corral_mean_130": sum(corral) / len(corral) if corral else None,
        "fgd_mean_130": sum(fgd) / len(fgd) if fgd else None,
        "fgd_artifact_mean_130": sum(fgd_art) / len(fgd_art) if fgd_art else None,
        "corral_ge_fgd_workloads": sum(c >= f for c, f in zip(corral, fgd)),
        "figure": str(path) if path else None, "runs": len(results), "seconds": round(time.perf_counter() - start, 1),
        "seconds_per_run": round(sum(r.seconds for r in results) / len(results), 3),
        "rows": rows,
    }
    artifact = summary["fgd_artifact_mean_130"]
    figure_note = path or "not drawn (it needs matplotlib: pip install 'corral[sim]')"
    out.print(f"fidelity: {matched}/{total} cells match; corral {summary['corral_mean_130']:.2f} vs FGD "
              f"{summary['fgd_mean_130']:.2f} (artifact {'n/a' if artifact is None else f'{artifact:.2f}'}) averaged "
              f"over {len(corral)} workloads; corral >= FGD on {summary['corral_ge_fgd_workloads']}; "
              f"figure {figure_note}", markup=False)
    if as_json:
        print(json.dumps(summary))
