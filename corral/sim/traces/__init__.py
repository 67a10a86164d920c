"""Trace loaders: real cluster traces and a synthetic one, all as corral's :class:`~corral.sim.trace.Trace`.

``load_trace(name)`` takes one of :data:`TRACE_NAMES`, optionally with options after a colon
(``synthetic:machines=10000,tasks=1000000,hours=24``, ``openb:workload=gpuspec33,nodes=all``),
or the path of a ``.jsonl`` file in the native format (:mod:`corral.sim.traces.native`).
README.md in this folder says what each loader reads, how it maps it and what it estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral.sim.trace import Trace, TraceError
from corral.sim.traces.alibaba_batch import load_alibaba_batch
from corral.sim.traces.azure import load_azure
from corral.sim.traces.common import default_traces_dir, parse_options, typed_options
from corral.sim.traces.dlrm import load_dlrm
from corral.sim.traces.native import read_trace, write_trace
from corral.sim.traces.omega import load_omega
from corral.sim.traces.openb import load_openb
from corral.sim.traces.synthetic import load_synthetic, synthetic_trace

LOADERS: dict[str, Callable[..., Trace]] = {
    "openb": load_openb,
    "dlrm": load_dlrm,
    "alibaba-batch": load_alibaba_batch,
    "azure": load_azure,
    "synthetic": load_synthetic,
    "omega": load_omega,
}
TRACE_NAMES: tuple[str, ...] = tuple(LOADERS)

__all__ = ["LOADERS", "TRACE_NAMES", "default_traces_dir", "load_trace", "read_trace", "synthetic_trace",
           "write_trace"]


def load_trace(name: str, path: str | Path | None = None, *, seed: int = 0, **options: Any) -> Trace:
    """The trace ``name`` (``base`` or ``base:key=value,...``) or a native ``.jsonl`` file.

    ``path`` overrides where the loader reads its file(s); ``options`` (keywords) override those
    in the name. Seeded loaders give the same trace for the same seed. The trace is checked.
    Raises :class:`TraceError` for an unknown name or option and for any problem with a file.
    """
    if name.endswith(".jsonl"):
        if options:
            raise TraceError(name, 0, "a native .jsonl trace takes no options")
        trace = read_trace(name)
    else:
        base, _, text = name.partition(":")
        loader = LOADERS.get(base)
        if loader is None:
            raise TraceError(name, 0, f"unknown trace {base!r}: expected one of {', '.join(TRACE_NAMES)} "
                                      "(with options as name:key=value,...) or the path of a .jsonl native trace")
        merged: dict[str, Any] = {**parse_options(text, name), **options}
        trace = loader(path, seed=seed, **typed_options(loader, merged, name))
    trace.check()
    return trace
