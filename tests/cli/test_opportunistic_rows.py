"""How the listings show opportunistic tasks (beyond quota): the task's word and the job's count."""

from corral.cli.client import job_tasks_cell, task_word
from corral.cli.lists import job_row, task_row


def test_an_opportunistic_task_says_so_in_its_state_and_a_regular_one_does_not():
    task = {"name": "3.sweep.alice.local", "state": "running", "word": "running", "machine": "m1",
            "opportunistic": True}
    assert task_word(task) == "running (opportunistic)"
    assert task_row(task, wide=False)[:3] == ["3.sweep.alice.local", "running (opportunistic)", "m1"]
    assert task_word({**task, "opportunistic": False}) == "running"


def test_a_job_counts_its_opportunistic_tasks_beside_its_tasks():
    job = {"job": "sweep.alice", "state": "running", "priority": 4, "tasks": 6, "opportunistic": 2,
           "task_states": {"pending": 0, "running": 6, "dead": 0}}
    assert job_tasks_cell(job) == "6 (2 opportunistic)"
    assert job_row(job, wide=False)[3] == "6 (2 opportunistic)"
    assert job_tasks_cell({**job, "opportunistic": 0}) == "6"
