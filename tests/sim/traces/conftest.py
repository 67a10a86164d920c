"""Shared by the trace-loader tests: a way to cut samples from the real traces, a validity check."""

from pathlib import Path

import pytest

from corral.model.spec import parse_job_spec
from corral.sim.trace import Trace, job_spec, sort_jobs

@pytest.fixture
def head():
    """head(source, destination, lines, edit=None): copy the first ``lines`` lines (header included),
    optionally replacing line ``n`` (1-based) with ``edit[n]``."""
    def cut(source: Path, destination: Path, lines: int, edit: dict[int, str] | None = None) -> Path:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with open(source) as f:
            chosen = [next(f) for _ in range(lines)]
        for n, text in (edit or {}).items():
            chosen[n - 1] = text if text.endswith("\n") else text + "\n"
        destination.write_text("".join(chosen))
        return destination
    return cut


@pytest.fixture
def valid():
    """valid(trace): it passes Trace.check, its jobs are in (arrival, name) order, every job is a valid spec."""
    def check(trace: Trace) -> Trace:
        trace.check()
        assert trace.jobs == sort_jobs(trace.jobs)
        for job in trace.jobs:
            parse_job_spec(job_spec(job))
        assert trace.notes and all(isinstance(n, str) and n for n in trace.notes)
        return trace
    return check
