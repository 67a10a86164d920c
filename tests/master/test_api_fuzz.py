"""A bounded schemathesis run against a live master: every operation of the OpenAPI document, its
coverage and fuzzing phases (30 s of them),
every check schemathesis has, ``positive_data_acceptance`` and ``negative_data_rejection``
included: no server error, no answer the document does not describe, nothing the document calls
valid refused and nothing it calls invalid accepted.

The document states the rules of the inputs (corral/master/openapi_rules.py); the three it cannot
(``after`` names an existing job, distinct fixed named ports, an update's body names its path's
job) are taught to the positive cases by api_fuzz_hooks.py (which also asks the long polls,
``/events`` and ``/names/{job}``, for ``watch=false``: an answer held open for an hour reads as a
timeout), and api_fuzz.toml scopes two statuses
no schema can predict (422 for a job over its user's quota; 502/503 for a log its agent cannot
relay). The run is seeded, so a failure replays.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis")

from corral.master.quota import Quotas  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
RUN = "from schemathesis.cli import schemathesis; schemathesis()"
# a quota for every user the fuzzer makes up, so that jobs reach the core (not all 422s); a job
# over it is still refused, as it should be
ROOMY = {band: {"cpu": 10_000, "memory": "64Ti", "disk": "64Ti", "gpu": 640}
         for band in ("monitoring", "production", "batch", "best-effort")}


@pytest.mark.api_fuzz
@pytest.mark.timeout(150)
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(server, tmp_path):
    server.master.core.quotas = Quotas.parse({"*": ROOMY})
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.master.api_fuzz_hooks",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", RUN, "--config-file", str(HERE / "api_fuzz.toml"), "run", server.url + "/openapi.json",
         "-H", "Authorization: Bearer t-ops", "--checks", "all", "--phases", "examples,coverage,fuzzing",
         "--max-examples", "10", "--seed", "17", "--max-time", "30", "--request-timeout", "60", "--no-color"],
        capture_output=True, text=True, timeout=140, cwd=tmp_path, env=env)
    summary = done.stdout[-4000:]
    print(summary)
    assert done.returncode == 0, summary
    assert "api_fuzz.toml" in done.stdout, summary  # the scopes were read
    selected = re.search(r"Selected: (\d+)/(\d+)", done.stdout)
    assert selected and f"Tested: {selected[1]}" in done.stdout, summary  # every operation ran
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert cases and int(cases[1]) >= int(selected[1]), summary  # at least a case per operation
