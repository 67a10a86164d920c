"""Many openb experiments at once: seeds x workloads x policies in worker processes, summaries,
and the comparison with the artifact's published numbers.

In: workloads, policy names, seeds, a trace folder, a process count. Out:
:class:`~corral.sim.openb.experiment.RunResult` per run (optionally kept in a
JSON-lines file so a repeated comparison only runs what is missing), the
per-(workload, policy) summary as JSON-ready dicts, and comparison rows.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

from corral.sim.openb.expected import expected_alloc
from corral.sim.openb.experiment import FRAG_COLUMN, REPORT_COLUMNS, RunResult, run_experiment
from corral.sim.openb.policies import ARTIFACT_NAMES

Progress = Callable[[RunResult], None]


def _run(args: tuple[str, str, str, int]) -> RunResult:
    trace_dir, workload, policy, seed = args
    return run_experiment(Path(trace_dir), workload, policy, seed)


def _from_json(row: dict) -> RunResult:
    row = dict(row)
    row["alloc"] = {int(k): v for k, v in row["alloc"].items()}
    row["frag_ratio"] = {int(k): v for k, v in row["frag_ratio"].items()}
    return RunResult(**row)


def load_results(path: Path | None) -> dict[tuple[str, str, int], RunResult]:
    out: dict[tuple[str, str, int], RunResult] = {}
    if path and Path(path).exists():
        for line in Path(path).read_text().splitlines():
            if line.strip():
                r = _from_json(json.loads(line))
                out[(r.workload, r.policy, r.seed)] = r
    return out


def run_many(trace_dir: Path, runs: Iterable[tuple[str, str, int]], processes: int = 2,
             progress: Progress | None = None, results_file: Path | None = None) -> list[RunResult]:
    """Run every ``(workload, policy, seed)``; reuse those already in ``results_file`` and append new ones."""
    runs = list(runs)
    known = load_results(results_file)
    todo = [r for r in runs if r not in known]
    done = dict(known)
    sink = open(results_file, "a") if results_file else None
    try:
        for r in (known[k] for k in runs if k in known):
            if progress:
                progress(r)
        args = [(str(trace_dir), w, p, s) for w, p, s in todo]
        if processes <= 1 or len(args) <= 1:
            results = map(_run, args)
            pool = None
        else:
            pool = mp.get_context("fork").Pool(processes)
            results = pool.imap_unordered(_run, args)
        try:
            for result in results:
                done[(result.workload, result.policy, result.seed)] = result
                if sink:
                    sink.write(json.dumps(asdict(result)) + "\n")
                    sink.flush()
                if progress:
                    progress(result)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    finally:
        if sink:
            sink.close()
    return [done[r] for r in runs]


def _mean_stdev(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(results: Sequence[RunResult]) -> dict:
    """The ``corral sim openb --json`` object for runs of one workload and policy."""
    first = results[0]
    alloc = {}
    for x in REPORT_COLUMNS:
        per_seed = [r.alloc.get(x) for r in results]
        mean, stdev = _mean_stdev(per_seed)
        alloc[str(x)] = {"mean": round(mean, 3), "stdev": round(stdev, 3), "per_seed": per_seed}
    mean, stdev = _mean_stdev([r.frag_ratio.get(FRAG_COLUMN) for r in results])
    n = len(results)
    return {
        "workload": first.workload,
        "policy": first.policy,
        "seeds": [r.seed for r in results],
        "alloc": alloc,
        "frag_ratio": {str(FRAG_COLUMN): {"mean": round(mean, 3), "stdev": round(stdev, 3)}},
        "placed": sum(r.placed for r in results) / n,
        "failed": sum(r.failed for r in results) / n,
        "cpu_only_placed": sum(r.cpu_only_placed for r in results) / n,
        "seconds_per_run": round(sum(r.seconds for r in results) / n, 3),
        "per_seed": {
            "placed": [r.placed for r in results], "failed": [r.failed for r in results],
            "cpu_only_placed": [r.cpu_only_placed for r in results], "seconds": [round(r.seconds, 3) for r in results],
        },
    }


def artifact_stats(trace_dir: Path, workload: str, policy: str, column: int = 130) -> tuple[float, float] | None:
    """The artifact's mean and stdev over seeds 42..51 for a paper policy, else None."""
    name = ARTIFACT_NAMES.get(policy)
    if name is None:
        return None
    try:
        values = expected_alloc(trace_dir).get((workload, name), {}).get(column)
    except FileNotFoundError:
        return None
    return _mean_stdev(values) if values else None


def group(results: Sequence[RunResult]) -> dict[tuple[str, str], list[RunResult]]:
    out: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        out.setdefault((r.workload, r.policy), []).append(r)
    return out


def comparison_rows(trace_dir: Path, results: Sequence[RunResult], column: int = 130) -> list[dict]:
    """Per (workload, policy): corral's mean/stdev at ``column``, the artifact's, and whether they match
    (within one artifact stdev or 0.3 points, whichever is larger)."""
    rows = []
    for (workload, policy), runs in group(results).items():
        mean, stdev = _mean_stdev([r.alloc.get(column) for r in runs])
        art = artifact_stats(trace_dir, workload, policy, column)
        row = {"workload": workload, "policy": policy, "mean": mean, "stdev": stdev,
               "cpu_only_placed": sum(r.cpu_only_placed for r in runs) / len(runs),
               "seconds": sum(r.seconds for r in runs) / len(runs)}
        if art:
            row.update(artifact_mean=art[0], artifact_stdev=art[1],
                       match=abs(mean - art[0]) <= max(art[1], 0.3))
        rows.append(row)
    return rows
