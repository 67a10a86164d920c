"""A freed slot is used at once: the agent tells the master a task ended instead of waiting for a poll.

A real cell (``corral up``: a master and one agent, real processes) whose master polls every 5 s. A job
of 2 tasks that each take the whole machine (``sleep 0.3``) runs one task after the other; the second
starts well before the next poll could have told the master the first one ended."""

from __future__ import annotations

from tests.e2e.conftest import Cell, wait_until

POLL_S = 5.0


def test_the_second_task_starts_on_the_freed_slot_long_before_the_next_poll(tmp_path):
    cell = Cell(tmp_path, agents=1, poll_interval_s=POLL_S)
    try:
        cell.start()
        # The machine has 4 cores: a task of 3 leaves no room for a second.
        spec = cell.spec("pair", tasks=2, command="sleep", args=["0.3"], resources={"cpu": "3", "memory": "32Mi"})
        done = cell.corral("submit", spec)
        assert done.returncode == 0, done.stderr
        job = cell.api("/jobs/pair")
        wait_until(lambda: cell.api("/jobs/pair")["state"] not in ("pending", "running"), 20, "the job to end")
        agent = {t["task_id"]: t for t in cell.agent_state("m1")["tasks"]}
        first, second = (f"{i}.pair.{job['user']}.local" for i in (0, 1))
        assert agent[first]["state"] == agent[second]["state"] == "finished"
        ended_first = agent[first]["started_at"] + 0.3  # the agent's clock: this host's wall clock
        gap = agent[second]["started_at"] - ended_first
        assert gap < 2.0, f"the second task started {gap:.2f}s after the first ended (polls every {POLL_S}s)"
        # The master heard of the second task's end as fast (the job's end is its last transition).
        history = {t["object"]: t for t in cell.api("/jobs/pair/events")["events"] if t["kind"] == "task"}
        heard = history[second]["t"] - (agent[second]["started_at"] + 0.3)
        assert history[second]["via"] == "finish" and heard < 2.0, f"the master heard of the end {heard:.2f}s late"
    finally:
        cell.stop()
    assert not cell.leftovers(), cell.leftovers()
