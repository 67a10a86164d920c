"""Operating a real cell (``corral up --log-format json``: a master and two agents as processes):
Prometheus metrics scraped from the master and every agent and parsed as the text format, JSON log
lines with command ids, and the CLI's ``events``, ``logs -f`` and ``jobs --watch``."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Cell, wait_until


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    cell = Cell(tmp_path_factory.mktemp("ops"), agents=2)
    cell.extra = ["--log-format", "json"]
    try:
        cell.start()
        done = cell.corral("submit", cell.spec("ticker", tasks=2, command="sh",
                                               args=["-c", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done"]))
        assert done.returncode == 0, done.stderr
        yield cell
    finally:
        cell.stop()
    assert not cell.leftovers(), cell.leftovers()


def scrape(url: str) -> dict[str, list]:
    r = httpx.get(url + "/metrics", timeout=5.0)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


def value(families: dict[str, list], sample: str, **labels: str) -> float:
    for samples in families.values():
        for s in samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {sample} {labels} in {sorted(families)}")


def test_the_master_and_every_agent_serve_prometheus_metrics(cell):
    wait_until(lambda: value(scrape(cell.url), "corral_tasks_placed_total") >= 2, 20, "two placements")
    master = scrape(cell.url)
    assert value(master, "corral_scheduling_round_duration_seconds_count") >= 1
    assert value(master, "corral_store_append_duration_seconds_count") >= 1
    assert value(master, "corral_master_leader") == 1.0
    assert value(master, "corral_commands_total", command="Submit") >= 1
    for name in ("m1", "m2"):
        assert value(master, "corral_agent_poll_duration_seconds_count", machine=name) >= 1
    for name in ("corral_tasks_preempted_total", "corral_tasks_evicted_total", "corral_commit_conflicts_total",
                 "corral_commit_retries_total"):
        assert value(master, name) >= 0
    assert "corral_tasks_pending" in master and "corral_agent_poll_failures" in master
    starts = 0.0
    for name, agent in cell.info["agents"].items():
        families = scrape(agent["address"])
        starts += value(families, "corral_agent_task_starts_total")
        assert value(families, "corral_agent_polls_total") >= 1
        assert "corral_agent_task_cpu_usage_cores" in families and "corral_agent_task_restarts" in families
    assert starts >= 2


def test_the_masters_log_is_json_lines_with_the_command_id_of_each_submit_and_placement(cell):
    def lines():
        out = []
        for line in (cell.dir / "logs" / "master.log").read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    wait_until(lambda: any(e.get("message") == "task placed" for e in lines()), 20, "a placement logged")
    found = lines()
    submitted = [e for e in found if e.get("message") == "job submitted" and e.get("job", "").startswith("ticker.")]
    placed = [e for e in found if e.get("message") == "task placed"]
    assert submitted and submitted[0]["cmd"] and submitted[0]["level"] == "info" and submitted[0]["time"].endswith("Z")
    assert placed and all(e["cmd"] and e["task"] and e["machine"] for e in placed)
    assert any("leading cell" in e.get("message", "") for e in found)


def test_corral_events_lists_a_jobs_history_with_rfc3339_times(cell):
    wait_until(lambda: "task_scheduled" in cell.corral("events", "--job", "ticker").stdout, 20, "placements")
    out = cell.corral("events", "--job", "ticker")
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].split()[1] == "job_submitted" and rows[0].split()[0].endswith("Z")
    as_json = cell.corral("events", "--job", "ticker", "-o", "json")
    assert {e["job"] for e in json.loads(as_json.stdout)["events"]} == {rows[0].split()[2]}


def test_corral_logs_follow_prints_new_lines_until_the_task_ends(cell):
    out = cell.corral("logs", "-f", "--interval", "0.3", "ticker/0", timeout_s=40)
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines() if line.startswith("tick")] == [f"tick {i}" for i in range(1, 7)]


def test_corral_jobs_watch_prints_the_table_then_each_row_that_changes(cell):
    import queue
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "jobs", "--watch", "--interval", "0.2"],
                            env=cell.env, cwd=cell.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        header = lines.get(timeout=20)
        assert header.startswith("JOB") and "STATE" in header
        assert lines.get(timeout=10).startswith("ticker.")  # its row as it is now
        cell.corral("submit", cell.spec("watched", command="true"))
        deadline = time.monotonic() + 20
        seen = []
        while not any(line.startswith("watched.") for line in seen) and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        assert any(line.startswith("watched.") for line in seen), seen
    finally:
        proc.terminate()
        proc.wait(10)
