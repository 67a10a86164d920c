"""The FGD artifact's published results (PROTOCOL §11), read for comparison.

In: ``fgd-atc23-expected-results/analysis_allo_discrete.csv`` (and the
fragmentation-ratio file). Out: ``{(workload, policy_dir): {column: [value per
seed 42..51]}}`` with short workload names (``default``) and the artifact's
policy directory names (``06-FGD``).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from corral.sim.openb.loader import POD_PREFIX

ALLOC_FILE = "analysis_allo_discrete.csv"
FRAG_RATIO_FILE = "analysis_frag_ratio_discrete.csv"


def expected_dir(trace_dir: Path) -> Path:
    """``fgd-atc23-expected-results`` beside the openb trace folder."""
    return Path(trace_dir).resolve().parents[1] / "fgd-atc23-expected-results"


@lru_cache(maxsize=4)
def _read(path: str) -> dict[tuple[str, str], dict[int, list[float]]]:
    out: dict[tuple[str, str], dict[int, list[float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["workload"].removeprefix(POD_PREFIX), row["sc_policy"])
            cols = out.setdefault(key, {})
            for name, value in row.items():
                if name.isdigit() and value not in ("", None):
                    cols.setdefault(int(name), []).append(float(value))
    return out


def expected_alloc(trace_dir: Path) -> dict[tuple[str, str], dict[int, list[float]]]:
    return _read(str(expected_dir(trace_dir) / ALLOC_FILE))


def expected_frag_ratio(trace_dir: Path) -> dict[tuple[str, str], dict[int, list[float]]]:
    return _read(str(expected_dir(trace_dir) / FRAG_RATIO_FILE))
