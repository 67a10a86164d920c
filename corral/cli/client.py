"""The user commands on one job or task: ``corral submit|status|why|kill|update|rollback``.

They reach the master through corral.client (``CORRAL_ADDR`` / ``CORRAL_TOKEN``
or the config file ``corral up`` and ``corral master`` write). ``-o json`` or
``-o yaml`` prints the API's reply. Bad input (a spec that does not validate,
an unknown job, a refused command) prints one line and exits 2; an
unreachable master exits 1. A spec without ``user`` is the token's user's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

from corral.cli.connect import calling, die
from corral.cli.output import Output, output_option, print_data, table

# How a job's ``task_states`` counts fold into the table's three columns. The master's own task
# states (pending, running, dead) and the finer words users see (corral.master.status) are both
# read; a key not listed here is left out rather than guessed at.
_TASK_COLUMNS = {"pending": 0, "running": 1, "starting": 1, "restarting": 1,
                 "dead": 2, "ended": 2, "succeeded": 2, "failed": 2, "killed": 2}


def _die(command: str, message: str, code: int = 2) -> NoReturn:
    die(command, message, code)


def task_counts(job: dict[str, Any]) -> tuple[int, int, int]:
    """(pending, running, ended) tasks of a job reply, from whatever keys its ``task_states`` has."""
    counts = [0, 0, 0]
    states = job.get("task_states")
    for key, n in (states.items() if isinstance(states, dict) else ()):
        column = _TASK_COLUMNS.get(key)
        if column is not None and isinstance(n, int):
            counts[column] += n
    return counts[0], counts[1], counts[2]


def task_word(task: dict[str, Any]) -> str:
    """The word a task reply shows a user: its ``word`` when the master gives one, else its state;
    ``running (opportunistic)`` for a task beyond its user's quota."""
    word = str(task.get("word") or task.get("state") or "")
    return f"{word} (opportunistic)" if task.get("opportunistic") else word


def job_tasks_cell(job: dict[str, Any]) -> str:
    """A job's task count as a table shows it: ``6 (2 opportunistic)`` when some run beyond quota."""
    extra = job.get("opportunistic") or 0
    return f"{job.get('tasks')} ({extra} opportunistic)" if extra else str(job.get("tasks"))


def placed_on(task: dict[str, Any]) -> str:
    """A task's machine as a table shows it: ``m1 (reclaimed)`` when it runs in reclaimed room."""
    machine = str(task.get("machine") or "")
    shown = f"{machine} (reclaimed)" if machine and task.get("reclaimed") else machine
    copy = task.get("speculative_copy")
    return f"{shown} + copy on {copy.get('machine')}" if machine and isinstance(copy, dict) else shown


def task_note(task: dict[str, Any]) -> str:
    """A task's one line beyond its word: the master's ``detail`` when present, else what it can
    be made of (restarts, last exit), else its pending reason or last transition's note."""
    detail = task.get("detail")
    if detail:
        return str(detail)
    parts = []
    restarts = task.get("restarts")
    if isinstance(restarts, int) and restarts:
        parts.append(f"{restarts} restart{'s' if restarts != 1 else ''}")
    if task.get("last_exit"):
        parts.append(f"last: {task['last_exit']}")
    if parts:
        return f"{task_word(task)}: {', '.join(parts)}"
    return str(task.get("reason") or "")


def rollout_line(rollout: dict[str, Any]) -> str:
    """``rollout to version 3: paused, 1/4 updated: task 2 of version 3 failed: ...``."""
    return (f"rollout to version {rollout.get('version')}: {rollout.get('state')}, "
            f"{rollout.get('updated')}/{rollout.get('tasks')} updated"
            + (f": {rollout['reason']}" if rollout.get("reason") else ""))


def load_spec(command: str, path: Path) -> dict[str, Any]:
    """The spec file as a mapping; a YAML error is one line with its line and column, exit 2."""
    from corral.client import ApiError
    from corral.client.specfile import read_spec

    try:
        return read_spec(path)
    except ApiError as e:
        _die(command, e.message)


def _why_job(job: str, output: str) -> None:
    """Why the tasks of a whole job wait: each distinct reason once, with the tasks it holds."""
    with calling("why") as client:
        data = client.get(job)
    reasons: dict[str, list[int]] = {}
    for task in data["task_list"]:
        if task["state"] == "pending":
            reason = task.get("reason", "")
            if task.get("opportunistic"):  # beyond quota: why it waits differs from a regular task's
                reason = f"opportunistic (beyond quota, idle room only): {reason}"
            reasons.setdefault(reason, []).append(task["index"])
    if print_data({"job": data["job"], "state": data["state"],
                   "pending": [{"reason": r, "tasks": ts} for r, ts in reasons.items()]}, output):
        return
    if not reasons:
        typer.echo(f"{data['job']} ({data['state']}): no task is pending")
    for reason, indexes in reasons.items():
        shown = ",".join(map(str, indexes[:10])) + (",..." if len(indexes) > 10 else "")
        what = "allocs" if data.get("kind") == "allocset" else "tasks"
        typer.echo(f"{data['job']} {what} {shown} ({len(indexes)} pending): {reason}")


def show_plan(command: str, body: dict[str, Any], max_unavailable: int, output: Output) -> None:
    """A dry run's answer (``corral plan``, ``corral submit --dry-run``) as tables."""
    with calling(command) as client:
        data = client.plan(body, max_unavailable=max_unavailable)
    if print_data(data, output):
        return
    if "waves" in data:
        changed = ", ".join(data.get("changed", [])) or "nothing"
        typer.echo(f"{data['job']}: an update would change {changed}"
                   + (f", restarting {data['restarts']} tasks in {len(data['waves'])} waves" if data["waves"] else ""))
        for number, wave in enumerate(data["waves"], 1):
            typer.echo(f"  wave {number}: {', '.join(wave)}")
    else:
        typer.echo(f"{data['job']}: admitted; {len(data['placed'])} tasks would be placed, "
                   f"{len(data['preempted'])} preempted, {len(data['pending'])} stay pending")
    if data["placed"]:
        table([[p["task"], p["machine"], f"{p['score']:.3f}"] for p in data["placed"]], ["PLACE", "MACHINE", "SCORE"])
    if data["preempted"]:
        table([[v["task"], v["job"], v["priority"], v["machine"], v["by"]] for v in data["preempted"]],
              ["PREEMPT", "JOB", "PRIORITY", "MACHINE", "FOR"])
    if data["pending"]:
        table([[w["task"], w["reason"]] for w in data["pending"]], ["PENDING", "REASON"])
    typer.echo("(dry run: nothing was submitted)")


def register(app: typer.Typer) -> None:
    @app.command("submit")
    def submit(
        spec: Path = typer.Argument(..., help="job spec (YAML or JSON); without user: yours"),
        request_id: str = typer.Option("", "--request-id", help="idempotency key; default: a fresh one"),
        dry_run: bool = typer.Option(False, "--dry-run", help="say what would happen (as `corral plan`); submit nothing"),
        output: Output = output_option(),
    ) -> None:
        """Submit a job."""
        body = load_spec("submit", spec)
        if dry_run:
            return show_plan("submit", body, 1, output)
        # The client tries again with the same request id: the master answers a repeat with the first job.
        with calling("submit") as client:
            data = client.submit(body, request_id=request_id or None)
        if not print_data(data, output):
            typer.echo(f"{data['job']}: {data['state']} ({data['tasks']} tasks)"
                       + (" [already submitted]" if data.get("duplicate") else ""))

    @app.command("plan")
    def plan(
        spec: Path = typer.Argument(..., help="job spec (YAML or JSON); a live job of its name: its update"),
        max_unavailable: int = typer.Option(1, "--max-unavailable", help="for an update: tasks down at once"),
        output: Output = output_option(),
    ) -> None:
        """What submitting (or updating) this spec would do now: placements, preemptions, pending
        reasons, restart waves. Nothing changes."""
        if max_unavailable < 1:
            _die("plan", f"--max-unavailable: expected an integer >= 1, got {max_unavailable}")
        show_plan("plan", load_spec("plan", spec), max_unavailable, output)

    @app.command("status")
    def status(
        job: str = typer.Argument(..., help="NAME (yours) or NAME.USER"),
        output: Output = output_option(),
    ) -> None:
        """A job and its tasks."""
        with calling("status") as client:
            data = client.get(job)
            if data.get("kind") == "allocset":
                from corral.cli.allocs import print_allocset

                return print_allocset(client.allocset(data["job"]), output)
        if print_data(data, output):
            return
        typer.echo(f"job {data['job']}: {data['state']}, priority {data['priority']}, {job_tasks_cell(data)} tasks, "
                   f"version {data['version']}" + (f", after {data['after']}" if data.get("after") else "")
                   + (f", in alloc set {data['alloc']}" if data.get("alloc") else ""))
        if data.get("reason"):
            typer.echo(f"  {data['state']}: {data['reason']}")
        if data.get("rollout"):
            typer.echo(f"  {rollout_line(data['rollout'])}")
        wide = output == "wide"
        rows = [[t["index"], task_word(t) + (f" ({t['health']})" if t.get("health") else ""), placed_on(t),
                 ",".join(map(str, t.get("ports") or ()))]
                + ([t.get("restarts", 0), t.get("generation", ""), ",".join(map(str, t.get("gpus") or ()))]
                   if wide else []) + [task_note(t)] for t in data["task_list"]]
        table(rows, ["TASK", "STATE", "MACHINE", "PORTS"] + (["RESTARTS", "GEN", "GPUS"] if wide else [])
              + ["DETAIL"])

    @app.command("why")
    def why(
        task: str = typer.Argument(..., help="JOB/INDEX, a task's full name, or JOB for all its pending tasks"),
        output: Output = output_option(),
    ) -> None:
        """Why a task is pending."""
        if "/" not in task and task.count(".") < 3:
            return _why_job(task, output)
        with calling("why") as client:
            data = client.why(task)
        if print_data(data, output):
            return
        kind = ", opportunistic" if data.get("opportunistic") and data["state"] != "pending" else ""
        typer.echo(f"{data['task']} ({data['state']}{kind}): {data['summary']}")
        explanation = data.get("explanation") or {}
        counts = {**(explanation.get("filtered") or {}), **(explanation.get("exhausted") or {})}
        for reason, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            typer.echo(f"  * {reason}: {count} machines")

    @app.command("kill")
    def kill(
        job: str = typer.Argument(..., help="NAME (yours) or NAME.USER"),
        output: Output = output_option(),
    ) -> None:
        """Kill a job."""
        with calling("kill") as client:
            data = client.kill(job)
        if not print_data(data, output):
            typer.echo(f"{data['job']}: {data['state']}")

    @app.command("rollback")
    def rollback(
        job: str = typer.Argument(..., help="NAME (yours) or NAME.USER"),
        output: Output = output_option(),
    ) -> None:
        """Roll a job back to its spec before its last update (a rolling restart)."""
        with calling("rollback") as client:
            data = client.rollback(job)
        if not print_data(data, output):
            typer.echo(f"{data['job']}: version {data['version']}, {data.get('rollback') or 'rolling back'}")

    @app.command("update")
    def update(
        spec: Path = typer.Argument(..., help="the job's new spec (YAML or JSON)"),
        max_unavailable: int = typer.Option(1, "--max-unavailable", help="tasks down at once during a rolling update"),
        output: Output = output_option(),
    ) -> None:
        """Update a job: priority in place, anything else by a rolling restart."""
        if max_unavailable < 1:
            _die("update", f"--max-unavailable: expected an integer >= 1, got {max_unavailable}")
        body = load_spec("update", spec)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            _die("update", f"{spec}: name: required field is missing")
        with calling("update") as client:
            data = client.update(body, max_unavailable=max_unavailable)
        if print_data(data, output):
            return
        changed = ", ".join(data.get("changed", [])) or "nothing"
        how = " (rolling restart)" if data.get("restart") else ""
        typer.echo(f"{data['job']}: version {data['version']}, changed {changed}{how}")
