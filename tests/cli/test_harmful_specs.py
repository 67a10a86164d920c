"""``corral submit`` of a harmful spec file: one line naming the problem, exit 2, bounded time and memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.model.test_specfile import LAUGHS

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    ("nan", b"name: x\nresources: {cpu: .nan, memory: 1Gi}\n", "resources.cpu: expected a finite number, got nan"),
    ("inf", b"name: x\nresources: {cpu: .inf, memory: 1Gi}\n", "resources.cpu: expected a finite number, got inf"),
    ("utf8", b"name: \xc3\x28\n", "not UTF-8 text"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "nested deeper than"),
    ("laughs", LAUGHS.encode(), "expands to more than"),
]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # the billion laughs took 2.7 GB unbounded


@pytest.mark.parametrize("name,raw,message", FILES, ids=[f[0] for f in FILES])
def test_submit_refuses_a_harmful_file_in_one_line_with_exit_2(tmp_path, name, raw, message):
    spec = tmp_path / f"{name}.yaml"
    spec.write_bytes(raw)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CORRAL_ADDR": "http://127.0.0.1:9", "CORRAL_TOKEN": "t",
           "CORRAL_CONFIG": str(tmp_path / "none.yaml")}
    done = subprocess.run([sys.executable, "-m", "corral.cli.main", "submit", str(spec)], capture_output=True,
                          text=True, env=env, timeout=30, preexec_fn=_limit_memory)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
