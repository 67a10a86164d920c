"""``corral up --demo``: the example jobs submitted to a fresh local cell as its user, what they are
doing a few seconds later, and commands to try that name those very jobs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

DEMO_SPECS = ("prep.yaml", "batch.yaml", "service.yaml")


def demo(cell: Any, echo, examples: Path | None = None) -> None:
    """Submit the example jobs (``examples``, default the ones next to the package) and print how
    they are doing."""
    import yaml

    from corral.cli.client import task_counts
    from corral.cli.up import _pythonpath
    from corral.client import ApiError

    examples = examples or Path(_pythonpath().split(os.pathsep)[0]) / "examples"
    specs = [examples / n for n in DEMO_SPECS if (examples / n).exists()]
    if not specs:
        echo(f"corral up: --demo: no example specs under {examples}")
        return
    submitted: dict[str, str] = {}  # example file -> the job id the master gave it
    for path in specs:
        spec = yaml.safe_load(path.read_text())
        spec.pop("owner", None)
        spec.pop("user", None)  # the examples name none; an older copy might: the job is the caller's
        try:
            reply = cell.client().submit(spec)
            submitted[path.name] = reply["job"]
            echo(f"  submitted {path.name}: {reply['job']} ({reply['tasks']} tasks)")
        except ApiError as e:  # a demo: say what happened and go on
            echo(f"  {path.name}: {e.message}")
    time.sleep(4.0)
    client = cell.client()
    for job in client.list()["jobs"]:
        pending, running, ended = task_counts(job)
        echo(f"  {job['job']:<16} {job['state']:<9} pending {pending}, running {running}, ended {ended}")
        for task in client.get(job["job"])["task_list"][:3]:
            if task["state"] == "pending":
                echo(f"      {task['index']}: pending: {task.get('reason', '')}")
                break
    for line in hints(submitted):
        echo(line)


def hints(submitted: dict[str, str]) -> list[str]:
    """Commands to try, naming the jobs the demo submitted (their ids as the master answered)."""
    jobs = list(submitted.values())
    if not jobs:
        return []
    waiting = submitted.get("batch.yaml", jobs[0])
    first = submitted.get("prep.yaml", jobs[0])
    return ["  try:       corral jobs --watch",
            f"             corral status {waiting} && corral why {waiting}",
            f"             corral logs {first}/0 && corral events --job {waiting} --follow"]
