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

OUTPUT_HELP = "text or json"


class _Fail(Exception):
    def __init__(self, message: str, code: int):
        self.message, self.code = message, code


def _die(command: str, message: str, code: int = 2) -> NoReturn:
    typer.echo(f"corral {command}: {message}".splitlines()[0], err=True)
    raise typer.Exit(code)


def _check_output(command: str, output: str) -> None:
    if output not in ("text", "json"):
        _die(command, f"--output: expected text or json, got {output!r}")


def _call(command: str, method: str, path: str, body: Any = None, params: Any = None,
          headers: dict[str, str] | None = None, retries: int = 0) -> Any:
    import httpx

    from corral.cli.config import ClientConfigError, client_settings

    try:
        addr, token = client_settings()
    except ClientConfigError as e:
        _die(command, str(e))
    all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    last = ""
    for _ in range(retries + 1):
        try:
            response = httpx.request(method, addr + "/api/v1" + path, json=body, params=params,
                                     headers=all_headers, timeout=30.0)
            break
        except httpx.HTTPError as e:
            last = f"cannot reach the master at {addr}: {e}"
    else:
        _die(command, last, 1)
    try:
        data = response.json()
    except ValueError:
        data = {"message": response.text[:200]}
    if response.status_code >= 400:
        message = data.get("message") if isinstance(data, dict) else None
        _die(command, message or f"HTTP {response.status_code}", 2 if response.status_code < 500 else 1)
    return data


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [header] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _load_spec(command: str, path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        _die(command, f"cannot read {path}: {e.strerror}")
    except yaml.YAMLError as e:
        _die(command, f"{path} is not valid YAML: {str(e).splitlines()[0]}")
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
        state: str = typer.Option(None, "--state", help="pending, running or dead"),
        output: str = typer.Option("text", "--output", "-o", help=OUTPUT_HELP),
    ) -> None:
        """List jobs."""
        _check_output("jobs", output)
        params = {k: v for k, v in (("user", user), ("state", state)) if v}
        data = _call("jobs", "GET", "/jobs", params=params)
        if output == "json":
            return _print_json(data)
        rows = [[j["job"], j["state"], j["priority"], j["tasks"],
                 "/".join(str(j["task_states"][s]) for s in ("pending", "running", "dead"))] for j in data["jobs"]]
        _table(rows, ["JOB", "STATE", "PRIO", "TASKS", "PEND/RUN/DEAD"])

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
        rows = [[t["index"], t["state"], t["machine"] or "", ",".join(map(str, t["ports"])), t.get("reason", "")]
                for t in data["task_list"]]
        _table(rows, ["TASK", "STATE", "MACHINE", "PORTS", "REASON"])

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
        rows = [[t["name"], t["state"], t["machine"] or "", ",".join(map(str, t["ports"])), t.get("reason", "")]
                for t in data["tasks"]]
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


