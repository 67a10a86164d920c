"""``corral sim apollo``: a batch workload with and without Apollo's estimates, machine queues and corrections."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from corral.cli.sim import fail, load_trace_or_fail

COLUMNS = ("variant", "job p50 s", "job p90 s", "job p99 s", "wait p50 s", "wait p90 s", "extra CPU %",
           "CPU vs baseline %", "corrections (won)", "runtime est. err %", "wait est. err %", "run s")
ALIBABA_MACHINES = 150  # alibaba-batch's cell for this study (the loader's own default is 50)


def register(sim: typer.Typer) -> None:
    @sim.command()
    def apollo(
        trace: str = typer.Option("alibaba-batch", help="alibaba-batch or synthetic (name:key=value options as "
                                  "corral sim replay takes them)"),
        path: Path = typer.Option(None, help="the trace's file or folder [default: the loader's]"),
        stragglers: str = typer.Option("0.05:5", help="FRACTION:SLOWDOWN: that fraction of tasks' first runs "
                                       "take SLOWDOWN times their duration (seeded)"),
        limit_jobs: int = typer.Option(None, "--limit-jobs", min=1, help="replay only the first N jobs"),
        machines: int = typer.Option(None, min=1, help=f"cell size [default: {ALIBABA_MACHINES} for "
                                     "alibaba-batch, else the trace's]"),
        variants: str = typer.Option("baseline,estimates,corrections,apollo", help="which variants to run"),
        seed: int = typer.Option(0, min=0, help="seed of the stragglers, the scheduler and seeded traces"),
        out: Path = typer.Option(Path("sim-out"), help="folder for the JSON, CSV and PNG outputs"),
        csv_path: Path = typer.Option(None, "--csv", help="the per-variant CSV [default: in --out]"),
        plot: Path = typer.Option(None, help="the job-completion CDF PNG [default: in --out]"),
        as_json: bool = typer.Option(False, "--json", help="also print the whole summary as one JSON line "
                                     "(before the last line)"),
    ) -> None:
        """Apollo's experiment: job completion, task wait, extra CPU and corrections per variant.

        extra_cpu_pct is the core-seconds the stragglers' copies ran (won or lost) as a percentage of
        all other runs' core-seconds in that variant; cpu_vs_baseline_pct compares a variant's total
        core-seconds with the baseline's."""
        from rich.console import Console
        from rich.table import Table

        from corral.cli.sim_replay import _safe
        from corral.sim.apollo import VARIANTS, apollo_experiment, limit_jobs as first_jobs, parse_stragglers
        from corral.sim.apollo_report import write_apollo

        try:
            picked = parse_stragglers(stragglers, seed)
        except ValueError as e:
            fail(str(e))
        names = tuple(v.strip() for v in variants.split(",") if v.strip())
        if not names or any(v not in VARIANTS for v in names) or len(set(names)) != len(names):
            fail(f"--variants: expected distinct names among {', '.join(VARIANTS)}, comma-separated; got {variants!r}")
        base = trace.partition(":")[0]
        if base not in ("alibaba-batch", "synthetic"):
            fail(f"--trace: expected alibaba-batch or synthetic (batch workloads), got {trace!r}")
        size = machines if machines is not None else (ALIBABA_MACHINES if base == "alibaba-batch" else None)
        name = trace if size is None or "machines=" in trace else (
            f"{trace},machines={size}" if ":" in trace else f"{trace}:machines={size}")
        console = Console(stderr=True)
        with console.status(f"loading trace {name}"):
            loaded = first_jobs(load_trace_or_fail(name, path, seed), limit_jobs)
        with console.status("simulating") as status:
            def progress(variant: str) -> None:  # a spinner on a terminal, a line per variant in a log
                what = f"simulating the {variant} variant ({names.index(variant) + 1} of {len(names)})"
                status.update(what) if console.is_terminal else console.print(what, soft_wrap=True, highlight=False)
            summary = apollo_experiment(loaded, picked, seed=seed, variants=names, progress=progress)
        completions = summary.pop("completions")
        paths = write_apollo(summary, completions, out, f"apollo_{_safe(loaded.name)}_{seed}", csv_path, plot)
        table = Table(title=f"Apollo on {summary['trace']} ({summary['machines']} machines, {summary['jobs']:,} jobs, "
                            f"{summary['tasks']:,} tasks), stragglers {picked.text}, seed {seed}")
        for column in COLUMNS:
            table.add_column(column, justify="right")
        for v in names:
            f = summary[v]
            table.add_row(v, *(_n(f[k]) for k in ("job_completion_p50_s", "job_completion_p90_s",
                                                  "job_completion_p99_s", "task_wait_p50_s", "task_wait_p90_s",
                                                  "extra_cpu_pct", "cpu_vs_baseline_pct")),
                          f"{f['corrections_triggered']:,} ({f['corrections_succeeded']:,})",
                          _n(f["runtime_estimate_error_pct"]), _n(f["wait_estimate_error_pct"]), _n(f["seconds"]))
        Console(width=190).print(table)
        target = summary.get("target")
        if target is not None:
            console.print(f"target: apollo job completion p90 {target['apollo_p90_lower_pct']} % lower than baseline "
                          f"(at least 30 %), extra CPU {target['apollo_extra_cpu_pct']} % (at most 5 %): "
                          f"{'met' if target['met'] else 'NOT met'}", highlight=False, soft_wrap=True)
        console.print("wrote " + ", ".join(str(p) for p in paths.values()), highlight=False, soft_wrap=True)
        if as_json:
            print(json.dumps(summary))
        print(json.dumps({**{v: summary[v] for v in names}, "trace": summary["trace"], "machines": summary["machines"],
                          "jobs": summary["jobs"], "seed": seed, "stragglers": picked.text,
                          "seconds": summary["seconds"]}))


def _n(value) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:g}"
