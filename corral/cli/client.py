"""The user commands: ``corral submit|jobs|status|why|kill|update|tasks|machines``.

They talk to the master's API (``CORRAL_ADDR`` / ``CORRAL_TOKEN`` or the
config file ``corral master`` writes). ``--output json`` prints the API's
JSON. Bad input (a spec that does not validate, an unknown job, a refused
command) prints one line and exits 2; an unreachable master exits 1.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, NoReturn

import typer

from corral.cli.http import api, die

OUTPUT_HELP = "text or json"


def _die(command: str, message: str, code: int = 2) -> NoReturn:
    die(command, message, code)


def _check_output(command: str, output: str) -> None:
    if output not in ("text", "json"):
        _die(command, f"--output: expected text or json, got {output!r}")


def _call(command: str, method: str, path: str, body: Any = None, params: Any = None,
          headers: dict[str, str] | None = None, retries: int = 0) -> Any:
    return api(command, method, path, json=body, params=params, headers=headers, retries=retries)


# What ``corral jobs --state`` accepts: a job's states, and ``dead`` for any ended job.
JOB_STATE_WORDS = ("pending", "running", "succeeded", "failed", "killed", "dead")
# How a job's ``task_states`` counts fold into the table's three columns. The master's own task
# states (pending, running, dead) and the finer words users see (corral.master.status) are both
# read; a key not listed here is left out rather than guessed at.
_TASK_COLUMNS = {"pending": 0, "running": 1, "starting": 1, "restarting": 1,
                 "dead": 2, "ended": 2, "succeeded": 2, "failed": 2, "killed": 2}


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
    """The word a task reply shows a user: its ``word`` when the master gives one, else its state."""
    return str(task.get("word") or task.get("state") or "")


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


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [header] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _load_spec(command: str, path: Path) -> dict[str, Any]:
    """The spec in ``path``, read with bounded size, depth and alias expansion (one line, exit 2)."""
    from corral.model.specfile import SpecFileError, load_spec_file

    try:
        data = load_spec_file(path)
    except SpecFileError as e:
        _die(command, str(e))
    if not isinstance(data, dict):
        _die(command, f"{path}: expected a mapping of job fields, got {type(data).__name__}")
    return data


def _why_job(job: str, output: str) -> None:
    """Why the tasks of a whole job wait: each distinct reason once, with the tasks it holds."""
    data = _call("why", "GET", f"/jobs/{job}")
    reasons: dict[str, list[int]] = {}
    for task in data["task_list"]:
        if task["state"] == "pending":
            reasons.setdefault(task.get("reason", ""), []).append(task["index"])
    if output == "json":
        return _print_json({"job": data["job"], "state": data["state"],
                            "pending": [{"reason": r, "tasks": ts} for r, ts in reasons.items()]})
    if not reasons:
        typer.echo(f"{data['job']} ({data['state']}): no task is pending")
    for reason, indexes in reasons.items():
        shown = ",".join(map(str, indexes[:10])) + (",..." if len(indexes) > 10 else "")
        typer.echo(f"{data['job']} tasks {shown} ({len(indexes)} pending): {reason}")


def register(app: typer.Typer) -> None:
    @app.command("submit")
    def submit(
        spec: Path = typer.Argument(..., help="job spec (YAML or JSON)"),
        request_id: str = typer.Option("", "--request-id", help="idempotency key; default: a fresh one"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """Submit a job."""
        _check_output("submit", output)
        body = _load_spec("submit", spec)
        rid = request_id or uuid.uuid4().hex
        # Retrying with the same request id is safe: the master answers a duplicate with the first job.
        data = _call("submit", "POST", "/jobs", body, headers={"X-Request-Id": rid}, retries=2)
        if output == "json":
            _print_json(data)
        else:
            typer.echo(f"{data['job']}: {data['state']} ({data['tasks']} tasks)"
                       + (" [already submitted]" if data.get("duplicate") else ""))

    @app.command("jobs")
    def jobs(
        user: str = typer.Option(None, "--user", "-u"),
        state: str = typer.Option(None, "--state", help=f"{', '.join(JOB_STATE_WORDS)} (any ended job)"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """List jobs."""
        _check_output("jobs", output)
        if state is not None and state not in JOB_STATE_WORDS:
            _die("jobs", f"--state: expected one of {', '.join(JOB_STATE_WORDS)}, got {state!r}")
        params = {k: v for k, v in (("user", user), ("state", state)) if v}
        data = _call("jobs", "GET", "/jobs", params=params)
        if output == "json":
            return _print_json(data)
        rows = [[j["job"], j["state"], j["priority"], j["tasks"], "/".join(map(str, task_counts(j)))]
                for j in data["jobs"]]
        _table(rows, ["JOB", "STATE", "PRIO", "TASKS", "PEND/RUN/ENDED"])

    @app.command("status")
    def status(
        job: str = typer.Argument(..., help="NAME (yours) or NAME.USER"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """A job and its tasks."""
        _check_output("status", output)
        data = _call("status", "GET", f"/jobs/{job}")
        if output == "json":
            return _print_json(data)
        typer.echo(f"job {data['job']}: {data['state']}, priority {data['priority']}, {data['tasks']} tasks, "
                   f"version {data['version']}" + (f", after {data['after']}" if data.get("after") else ""))
        if data.get("reason"):
            typer.echo(f"  {data['state']}: {data['reason']}")
        rows = [[t["index"], task_word(t), t.get("machine") or "", ",".join(map(str, t.get("ports") or ())),
                 task_note(t)] for t in data["task_list"]]
        _table(rows, ["TASK", "STATE", "MACHINE", "PORTS", "DETAIL"])

    @app.command("why")
    def why(
        task: str = typer.Argument(..., help="JOB/INDEX, a task's full name, or JOB for all its pending tasks"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """Why a task is pending."""
        _check_output("why", output)
        if "/" not in task and task.count(".") < 3:
            return _why_job(task, output)
        data = _call("why", "GET", f"/tasks/{task}/why")
        if output == "json":
            return _print_json(data)
        typer.echo(f"{data['task']} ({data['state']}): {data['summary']}")
        explanation = data.get("explanation") or {}
        counts = {**(explanation.get("filtered") or {}), **(explanation.get("exhausted") or {})}
        for reason, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            typer.echo(f"  * {reason}: {count} machines")

    @app.command("kill")
    def kill(
        job: str = typer.Argument(..., help="NAME (yours) or NAME.USER"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """Kill a job."""
        _check_output("kill", output)
        data = _call("kill", "POST", f"/jobs/{job}/kill")
        if output == "json":
            return _print_json(data)
        typer.echo(f"{data['job']}: {data['state']}")

    @app.command("update")
    def update(
        spec: Path = typer.Argument(..., help="the job's new spec (YAML or JSON)"),
        max_unavailable: int = typer.Option(1, "--max-unavailable", help="tasks down at once during a rolling update"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """Update a job: priority in place, anything else by a rolling restart."""
        _check_output("update", output)
        if max_unavailable < 1:
            _die("update", f"--max-unavailable: expected an integer >= 1, got {max_unavailable}")
        body = _load_spec("update", spec)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            _die("update", f"{spec}: name: required field is missing")
        owner = body.get("user", body.get("owner"))
        ref = f"{name}.{owner}" if isinstance(owner, str) and owner else name
        data = _call("update", "PUT", f"/jobs/{ref}", body, params={"max_unavailable": max_unavailable})
        if output == "json":
            return _print_json(data)
        changed = ", ".join(data.get("changed", [])) or "nothing"
        how = " (rolling restart)" if data.get("restart") else ""
        typer.echo(f"{data['job']}: version {data['version']}, changed {changed}{how}")

    @app.command("tasks")
    def tasks(
        job: str = typer.Option(None, "--job", "-j", help="NAME (yours) or NAME.USER"),
        user: str = typer.Option(None, "--user", "-u"),
        state: str = typer.Option(None, "--state", help="pending, running or dead"),
        machine: str = typer.Option(None, "--machine", "-m"),
        label: list[str] = typer.Option([], "--label", "-l", help="key=value of the machine it runs on; repeat to narrow"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """List tasks, with where they run or why they wait."""
        _check_output("tasks", output)
        params: dict[str, Any] = {k: v for k, v in (("job", job), ("user", user), ("state", state),
                                                     ("machine", machine)) if v}
        if label:
            params["label"] = label
        data = _call("tasks", "GET", "/tasks", params=params)
        if output == "json":
            return _print_json(data)
        rows = [[t["name"], task_word(t), t.get("machine") or "", ",".join(map(str, t.get("ports") or ())),
                 task_note(t)] for t in data["tasks"]]
        _table(rows, ["TASK", "STATE", "MACHINE", "PORTS", "REASON"])

    @app.command("machines")
    def machines(
        label: list[str] = typer.Option([], "--label", "-l", help="key=value; repeat to narrow"),
        state: str = typer.Option(None, "--state", help="up or lost"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """List the cell's machines."""
        from corral.model.resources import format_bytes, format_cpu

        _check_output("machines", output)
        params: dict[str, Any] = {"label": label} if label else {}
        if state:
            params["state"] = state
        data = _call("machines", "GET", "/machines", params=params)
        if output == "json":
            return _print_json(data)
        rows = []
        for m in data["machines"]:
            free = m.get("free") or {}
            rows.append([m["name"], m["state"], format_cpu(m["capacity"]["cpu"]), format_bytes(m["capacity"]["memory"]),
                         m["capacity"]["gpu"], format_cpu(free.get("cpu", 0)), format_bytes(free.get("memory", 0)),
                         m["tasks"], ",".join(f"{k}={v}" for k, v in m["attributes"].items())])
        _table(rows, ["MACHINE", "STATE", "CPU", "MEMORY", "GPU", "FREE CPU", "FREE MEM", "TASKS", "LABELS"])


