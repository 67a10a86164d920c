"""``corral sim omega``: one monolithic scheduler vs two on shared state, as the service decision time grows."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from corral.cli.sim import fail, load_trace_or_fail

COLUMNS = ("mode", "service decision s", "batch wait p50 s", "batch wait p90 s", "busyness",
           "conflict fraction (per scheduler)",
           "service wait p90 s", "transactions")


def parse_decisions(text: str) -> tuple[float, ...]:
    """``0.1,1,10,100`` -> seconds: distinct, each >= 0; one line and exit 2 otherwise."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 <= v < float("inf") for v in values) or len(set(values)) != len(values):
        fail(f"--decision-times: expected distinct seconds >= 0, comma-separated (0.1,1,10,100); got {text!r}")
    return values


def parse_modes(text: str) -> tuple[str, ...]:
    from corral.sim.omega import MODES

    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        fail(f"--modes: expected distinct names among {', '.join(MODES)}, comma-separated; got {text!r}")
    return modes


def register(sim: typer.Typer) -> None:
    @sim.command()
    def omega(
        trace: str = typer.Option("omega", help="omega[:machines=N,hours=H,load=X] (the default workload), or any "
                                  "trace corral sim replay takes (latency-sensitive jobs go to the service scheduler)"),
        path: Path = typer.Option(None, help="the trace's file or folder [default: the loader's]"),
        decision_times: str = typer.Option("0.1,1,10,100", help="the service scheduler's t_job, simulated seconds"),
        modes: str = typer.Option("monolithic,shared", help="monolithic (one scheduler) and/or shared (two)"),
        batch_decision: float = typer.Option(0.1, min=0, help="t_job of a batch job, simulated seconds"),
        task_decision: float = typer.Option(0.005, min=0, help="t_task, simulated seconds per task"),
        policy: str = typer.Option(None, help="the schedulers' policy [default: hybrid]"),
        seed: int = typer.Option(0, min=0, help="seed of the schedulers (and of seeded traces)"),
        out: Path = typer.Option(Path("sim-out"), help="folder for the JSON, CSV and PNG outputs"),
        as_json: bool = typer.Option(False, "--json", help="also print the whole summary as one JSON line "
                                     "(before the last line)"),
    ) -> None:
        """Omega's experiment: batch wait, scheduler busyness and conflicts vs the service decision time."""
        from rich.console import Console
        from rich.table import Table

        from corral.cli.sim_replay import _safe, check_policy_or_fail
        from corral.sched.policy import DEFAULT_POLICY
        from corral.sim.omega import OmegaConfig
        from corral.sim.omega_experiment import omega_experiment
        from corral.sim.omega_report import write_omega

        decisions, mode_list = parse_decisions(decision_times), parse_modes(modes)
        policy = policy or DEFAULT_POLICY
        check_policy_or_fail(policy)
        console = Console(stderr=True)
        with console.status(f"loading trace {trace}"):
            loaded = load_trace_or_fail(trace, path, seed)
        base = OmegaConfig(batch_decision_s=batch_decision, task_decision_s=task_decision, policy=policy, seed=seed)
        with console.status("simulating") as status:
            summary, runs = omega_experiment(loaded, decisions, mode_list, base, lambda mode, d: status.update(
                f"{mode} scheduling, service decision {d:g} s"))
        paths = write_omega(summary, runs, out, f"omega_{_safe(loaded.name)}_{seed}")
        jobs = summary["jobs"]
        table = Table(title=f"Omega on {summary['trace']} ({summary['machines']} machines, {jobs['batch']:,} batch "
                            f"and {jobs['service']:,} service jobs), {policy}, seed {seed}")
        for column in COLUMNS:
            table.add_column(column, justify="right")
        for figures in summary["runs"]:
            table.add_row(figures["mode"], f"{figures['service_decision_s']:g}", _s(figures["batch_wait_p50_s"]),
                          _s(figures["batch_wait_p90_s"]),
                          " / ".join(f"{k} {v:.3f}" for k, v in figures["busyness"].items()),
                          _conflicts(figures), _s(figures["service_wait_p90_s"]),
                          " ".join(f"{c['transactions']:,}" for c in figures["schedulers"].values()))
        Console(width=190).print(table)
        t = summary["target"]
        if t is not None:
            console.print(f"target (10 s vs 0.1 s): shared batch wait p90 x{t['shared_p90_10s_over_0_1s']} (within "
                          f"1.2x), monolithic x{t['monolithic_p90_10s_over_shared_10s']} of shared (at least 5x): "
                          f"{'met' if t['met'] else 'NOT met'}", highlight=False)
        for note in summary["notes"]:
            console.print(f"note: {note}", highlight=False)
        console.print("wrote " + ", ".join([str(paths["summary"])] + [p.name for k, p in paths.items()
                                                                      if k != "summary"]), highlight=False)
        if as_json:
            print(json.dumps(summary))
        print(json.dumps({"results": summary["results"], "seconds": summary["seconds"]}))


def _s(seconds: float) -> str:
    return f"{seconds:,.1f}" if seconds >= 100 else f"{seconds:.3f}"


def _conflicts(figures) -> str:
    per = figures["schedulers"]
    if len(per) < 2:
        return f"{figures['conflict_fraction']:.3f}"
    return f"{figures['conflict_fraction']:.3f} (" + " / ".join(f"{k} {v['conflict_fraction']:.3f}"
                                                              for k, v in per.items()) + ")"
