"""Simulator speed: the issue's two replays, through the real master core and scheduler.

1. openb v2023 replayed in time (8,152 pods over ~149 days on 1,213 GPU machines); target < 10 s.
2. A synthetic Borg-like cell of 10,000 machines and 1,000,000 tasks over one simulated day
   (``--until 86400``); target < 5 minutes.

    python bench/sim_replay.py --json

Each replay runs in this process, one after the other; the trace's loading time is reported
apart from the replay's. The last line is one JSON object: per replay its seconds, events per
second, placements and the target's ratio (seconds / target; below 1 meets it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.sim.replay import Replay, ReplayConfig  # noqa: E402
from corral.sim.traces import load_trace  # noqa: E402

CASES = {
    "openb": ("openb", None, 10.0),
    "synthetic-1m": ("synthetic:machines=10000,tasks=1000000,hours=24", 86400.0, 300.0),
}


def run(name: str, seed: int, quiet: bool) -> dict:
    trace_name, until, target = CASES[name]
    started = time.perf_counter()
    trace = load_trace(trace_name, seed=seed)
    loaded = time.perf_counter() - started
    sim = Replay(trace, ReplayConfig(seed=seed, until=until))
    last = [0.0]

    def progress(now: float, end: float) -> None:
        if not quiet and end and now / end >= last[0] + 0.1:
            last[0] = now / end
            print(f"  {name}: {100 * now / end:.0f}% of the simulated span, {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)

    result = sim.run(progress)
    s = result.summary
    return {"case": name, "trace": trace_name, "machines": s["machines"], "tasks": s["tasks"],
            "simulated_s": s["simulated_s"], "load_seconds": round(loaded, 2), "seconds": round(result.seconds, 2),
            "events": result.events, "events_per_s": round(result.events / result.seconds, 1),
            "placements": s["placements"], "rounds": s["rounds"], "core_events": s["core_events"],
            "target_s": target, "ratio_to_target": round(result.seconds / target, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="run only these (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="only the JSON line on stdout")
    args = parser.parse_args()
    results = [run(name, args.seed, quiet=False) for name in (args.case or list(CASES))]
    if not args.json:
        for r in results:
            print(f"{r['case']}: {r['seconds']} s for {r['tasks']:,} tasks on {r['machines']:,} machines "
                  f"({r['events_per_s']:,} events/s; target {r['target_s']} s)")
    print(json.dumps({"replays": results}))


if __name__ == "__main__":
    main()
