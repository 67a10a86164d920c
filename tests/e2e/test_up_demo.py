"""``corral up --demo`` as a first-time user runs it, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import re
import signal

import yaml

from tests.e2e.conftest import Cell, wait_until

# The repository's examples, minus the service's HTTP server on port 8080 of every interface:
# tests bind nothing but 127.0.0.1.
EXAMPLES = {
    "prep.yaml": {"name": "prep", "priority": 4, "resources": {"cpu": "250m", "memory": "32Mi"}, "command": "true"},
    "batch.yaml": {"name": "crunch", "priority": 4, "tasks": 20, "after": "prep", "command": "sh",
                   "args": ["-c", "exec sleep 600"], "resources": {"cpu": "1", "memory": "32Mi"}},
    "service.yaml": {"name": "web", "priority": 9, "appclass": "latency-sensitive", "tasks": 3,
                     "max_per_domain": {"rack": 1}, "constraints": ["zone in (a, b)"], "command": "sh",
                     "args": ["-c", "exec sleep 600"], "resources": {"cpu": "500m", "memory": "32Mi"}},
}


def test_corral_up_demo_submits_the_examples_shows_them_and_stops_cleanly_on_ctrl_c(tmp_path):
    cell = Cell(tmp_path, agents=2)
    examples = tmp_path / "examples"
    examples.mkdir()
    for name, spec in EXAMPLES.items():
        (examples / name).write_text(yaml.safe_dump({"user": "alice", **spec}))
    cell.extra = ["--demo", "--examples", str(examples), "--policy", "best-fit"]
    try:
        cell.start()
        wait_until(lambda: re.search(r"^\s+web\.\S+\s+\w+\s+pending \d", cell.out.read_text(), re.M)
                   and "pending: " in cell.out.read_text(), 30, "the demo's status lines")
        out = cell.out.read_text()
        assert re.search(r"submitted prep\.yaml: prep\.\S+ \(1 tasks\)", out), out
        assert re.search(r"^\s+prep\.\S+\s+(dead|succeeded)", out, re.M), out  # it ran and finished
        assert "policy best-fit" in (cell.dir / "logs" / "master.log").read_text()
        assert re.search(r"^\s+\d+: pending: \S+", out, re.M), out  # some task waits, with its reason
        jobs = cell.corral("jobs")
        assert jobs.returncode == 0 and "crunch." in jobs.stdout
        wait_until(lambda: "corral why " in cell.out.read_text(), 10, "the demo's hints")
        hinted = re.search(r"corral why (\S+)", cell.out.read_text()).group(1)
        assert hinted.startswith("crunch.")  # the job the demo submitted, as its user
        why = cell.corral("why", hinted)
        assert why.returncode == 0 and "pending" in why.stdout, why.stderr
        for agent in cell.info["agents"]:
            cell.agent_state(agent)  # remember the task processes: none may outlive the cell
        assert cell.seen_pids
        cell.proc.send_signal(signal.SIGINT)
        cell.proc.wait(40)
    finally:
        cell.stop()
    assert cell.proc.returncode == 0 and cell.out.read_text().rstrip().endswith("corral up: stopped")
    assert not cell.leftovers(), cell.leftovers()


def test_the_cells_tokens_are_made_once_and_kept_one_per_agent(tmp_path):
    from corral.cli.up import ensure_cell_tokens
    from corral.master.auth import Tokens

    path = tmp_path / "tokens.yaml"
    admin, agents = ensure_cell_tokens(path, "me", ["m1", "m2"])
    assert len({admin, *agents.values()}) == 3 and oct(path.stat().st_mode & 0o777) == "0o600"
    again = ensure_cell_tokens(path, "me", ["m1", "m2", "m3"])
    assert again[0] == admin and {k: again[1][k] for k in agents} == agents and "m3" in again[1]
    table = Tokens.load(path)
    assert table.lookup(admin).admin and {table.lookup(t).role for t in again[1].values()} == {"agent"}
