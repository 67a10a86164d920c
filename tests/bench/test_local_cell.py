"""The local-cell benchmark runs end to end (``--quick``), prints its JSON line, sees every job
end, and leaves no process of its cell behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


def cell_processes() -> list[psutil.Process]:
    """Processes of a benchmark cell: their command lines name its temporary directory."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any("corral-bench-cell-" in part for part in (p.info["cmdline"] or [])):
            found.append(p)
    return found


def test_the_quick_local_cell_benchmark_prints_every_figure_and_sees_every_job_end():
    before = {p.pid for p in cell_processes()}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "local_cell.py"), "--quick", "--json"],
                          capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(out["slots16"]) >= {"p50_s", "p99_s"}
    assert set(out["slots2"]) >= {"p50_s", "p99_s", "ideal_p50_s", "ideal_p99_s"}
    assert set(out["burst500"]) >= {"all_done_s"} and set(out["cli_call_s"]) >= {"p50", "p99"}
    assert out["poll_interval_s"] == 1.0
    for phase in ("slots16", "slots2", "burst500"):
        assert out[phase]["jobs_done"] == out[phase]["jobs"] > 0, (phase, out[phase])
    for phase in ("slots16", "slots2"):
        assert out[phase]["started"] == out[phase]["jobs"], f"{phase}: a task never wrote its start time"
        assert 0 < out[phase]["p50_s"] <= out[phase]["p99_s"]
    assert out["slots2"]["ideal_p50_s"] <= out["slots2"]["ideal_p99_s"]
    left = [p for p in cell_processes() if p.pid not in before]
    assert not left, f"the benchmark left processes of its cell behind: {[p.info['cmdline'] for p in left]}"


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_local_cell", ROOT / "bench" / "local_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



@pytest.mark.parametrize(
    "case, submits, slots, expected",
    [
        ("jobs that arrive slower than they end never wait", [0.0, 1.0, 2.0], 1, [0.0, 0.0, 0.0]),
        ("a third job on two slots waits for the first to end", [0.0, 0.1, 0.2], 2, [0.0, 0.0, 0.3]),
        ("a queue on one slot grows by the run time less the gap", [0.0, 0.1, 0.2], 1, [0.0, 0.4, 0.8]),
        ("submit times out of order are served in order", [0.2, 0.0, 0.1], 1, [0.0, 0.4, 0.8]),
    ],
)
def test_the_fifo_ideal_starts_each_job_when_it_arrives_or_when_a_slot_frees(case, submits, slots, expected):
    got = _bench_module().fifo_ideal(submits, slots, 0.5)
    assert got == pytest.approx(expected)
