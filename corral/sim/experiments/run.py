"""Run one experiment on a trace: checkpoint, trials, plot, timing. The CLI's one entry point.

The result is a JSON-ready dict that ends with ``events`` (master events over
every packing), ``seconds`` and ``events_per_s`` (events per wall second). Only
those last two depend on the machine and the moment: everything else is the
same for the same trace, options and seed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from corral.sched.policy import POLICIES, PolicyError, make_policy
from corral.sim.experiments.buckets import buckets
from corral.sim.experiments.checkpoint import checkpoint
from corral.sim.experiments.compaction import compaction
from corral.sim.experiments.reclaim import reclaim
from corral.sim.experiments.segregate import segregate
from corral.sim.experiments.trials import Progress
from corral.sim.plotting import MISSING, have_matplotlib
from corral.sim.trace import Trace

EXPERIMENTS: dict[str, Callable[..., dict]] = {
    "compaction": compaction, "segregate": segregate, "buckets": buckets, "reclaim": reclaim,
}
WORKLOADS = {"compaction": 1, "segregate": 3, "buckets": 2, "reclaim": 2}  # workloads compacted per (policy, seed)


def parse_policies(values: Sequence[str]) -> list[str]:
    """Policies from ``--policy`` values: each a preset, a weighted spec (``best-fit=1,spread=0.5``,
    whose commas are its own) or presets separated by commas. Raises PolicyError for an unknown one."""
    out: list[str] = []
    for value in values:
        value = value.strip()
        names = [value] if value in POLICIES or "=" in value else [v.strip() for v in value.split(",") if v.strip()]
        for name in names:
            make_policy(name)  # raises for an unknown policy
            if name not in out:
                out.append(name)
    if not out:
        raise PolicyError("expected at least one policy")
    return out


def run(experiment: str, trace: Trace, policies: list[str], seeds: list[int], at: float | str = "peak",
        workers: int = 1, plot_path: Path | None = None, progress: Progress | None = None,
        keep_overflow: bool = False, **options) -> dict:
    """Run ``experiment`` on the checkpoint of ``trace`` at ``at`` (the base seed ``seeds[0]`` packs it;
    see checkpoint.py), one trial per seed, ``workers`` processes; write the plot to ``plot_path``."""
    start = time.perf_counter()
    cp = checkpoint(trace, at, seeds[0], keep_overflow)
    result = EXPERIMENTS[experiment](cp, policies, seeds, workers, progress, **options)
    notes, events = result.pop("notes"), result.pop("events")
    if plot_path is not None and have_matplotlib():
        from corral.sim.experiments.plots import plot  # matplotlib: the [sim] extra

        result["plot"] = str(plot(result, plot_path))
    elif plot_path is not None:
        notes = [*notes, MISSING]
    seconds = time.perf_counter() - start
    result.update(notes=notes, events=events, seconds=round(seconds, 3),
                  events_per_s=round(events / seconds, 1) if seconds > 0 else None)
    return result
