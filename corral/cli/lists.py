"""The listing commands: ``corral jobs|tasks|machines``, each with ``-o text|wide|json|yaml`` and
(jobs, tasks) ``--watch``: the table, then each row that changes."""

from __future__ import annotations

from typing import Any

import typer

from corral.cli.client import job_tasks_cell, placed_on, task_counts, task_note, task_word
from corral.cli.connect import calling, die
from corral.cli.output import Output, output_option, print_data, table, watch_rows

# What ``corral jobs --state`` accepts: a job's states, and ``dead`` for any ended job.
JOB_STATE_WORDS = ("pending", "running", "succeeded", "failed", "killed", "dead")
JOB_HEADER = ["JOB", "STATE", "PRIO", "TASKS", "PEND/RUN/ENDED"]
JOB_WIDE = ["USER", "VERSION", "AFTER", "REASON"]
TASK_HEADER = ["TASK", "STATE", "MACHINE", "PORTS"]
TASK_WIDE = ["RESTARTS", "GEN", "GPUS", "ADDRESS"]


def job_row(j: dict[str, Any], wide: bool) -> list[Any]:
    row = [j["job"], j["state"], j["priority"], job_tasks_cell(j), "/".join(map(str, task_counts(j)))]
    return row + ([j.get("user"), j.get("version"), j.get("after") or "", j.get("reason") or ""] if wide else [])


def task_row(t: dict[str, Any], wide: bool) -> list[Any]:
    row = [t["name"], task_word(t), placed_on(t), ",".join(map(str, t.get("ports") or ()))]
    if wide:
        row += [t.get("restarts", 0), t.get("generation", ""), ",".join(map(str, t.get("gpus") or ())),
                t.get("address") or ""]
    return row + [task_note(t)]


def _watch_option() -> Any:
    return typer.Option(False, "--watch", "-w", help="after the table, print each row that changes (Ctrl-C stops)")


def _interval_option() -> Any:
    return typer.Option(1.0, "--interval", help="with --watch: seconds between looks")


def register(app: typer.Typer) -> None:
    @app.command("jobs")
    def jobs(
        user: str = typer.Option(None, "--user", "-u"),
        state: str = typer.Option(None, "--state", help=f"{', '.join(JOB_STATE_WORDS)} (any ended job)"),
        watch: bool = _watch_option(),
        interval: float = _interval_option(),
        output: Output = output_option(),
    ) -> None:
        """List jobs."""
        if state is not None and state not in JOB_STATE_WORDS:
            die("jobs", f"--state: expected one of {', '.join(JOB_STATE_WORDS)}, got {state!r}")
        wide = output == "wide"
        header = JOB_HEADER + (JOB_WIDE if wide else [])
        with calling("jobs") as client:
            if watch:
                return watch_rows(lambda: [(j["job"], job_row(j, wide), j)
                                           for j in client.list(user=user, state=state)["jobs"]],
                                  header, interval, output)
            data = client.list(user=user, state=state)
        if not print_data(data, output):
            table([job_row(j, wide) for j in data["jobs"]], header)

    @app.command("tasks")
    def tasks(
        job: str = typer.Option(None, "--job", "-j", help="NAME (yours) or NAME.USER"),
        user: str = typer.Option(None, "--user", "-u"),
        state: str = typer.Option(None, "--state", help="pending, running or dead"),
        machine: str = typer.Option(None, "--machine", "-m"),
        label: list[str] = typer.Option([], "--label", "-l", help="key=value of the machine it runs on; repeat to narrow"),
        watch: bool = _watch_option(),
        interval: float = _interval_option(),
        output: Output = output_option(),
    ) -> None:
        """List tasks, with where they run or why they wait."""
        wide = output == "wide"
        header = TASK_HEADER + (TASK_WIDE if wide else []) + ["REASON"]
        with calling("tasks") as client:
            def fetch() -> dict[str, Any]:
                return client.tasks(job=job, user=user, state=state, machine=machine, labels=label)

            if watch:
                return watch_rows(lambda: [(t["name"], task_row(t, wide), t) for t in fetch()["tasks"]],
                                  header, interval, output)
            data = fetch()
        if not print_data(data, output):
            table([task_row(t, wide) for t in data["tasks"]], header)

    @app.command("machines")
    def machines(
        label: list[str] = typer.Option([], "--label", "-l", help="key=value; repeat to narrow"),
        state: str = typer.Option(None, "--state", help="up or lost"),
        wait: bool = typer.Option(False, "--wait", help="print each machine's wait-time matrix (expected "
                                                        "seconds before a task of each cpu x memory shape starts)"),
        output: Output = output_option(),
    ) -> None:
        """List the cell's machines."""
        from corral.model.resources import format_bytes, format_cpu

        with calling("machines") as client:
            data = client.machines(labels=label, state=state)
            if wait:
                data = {"machines": [client.machine_wait(m["name"]) for m in data["machines"]]}
        if print_data(data, output):
            return
        if wait:
            for m in data["machines"]:
                typer.echo(f"{m['machine']}: expected wait (s) by cores x memory")
                table([[f"{c:g}"] + ["never" if w is None else f"{w:g}" for w in row]
                       for c, row in zip(m["cpu_buckets"], m["wait_s"])],
                      ["CPU"] + [format_bytes(b) for b in m["memory_buckets"]])
            return
        wide = output == "wide"
        rows = []
        for m in data["machines"]:
            free, cap = m.get("free") or {}, m["capacity"]
            reserved, used = m.get("reservation") or {}, m.get("usage") or {}
            row = [m["name"], m["state"], format_cpu(cap["cpu"]), format_bytes(cap["memory"]), cap["gpu"],
                   format_cpu(free.get("cpu", 0)), format_bytes(free.get("memory", 0)),
                   f"{format_cpu(reserved.get('cpu', 0))}/{format_bytes(reserved.get('memory', 0))}",
                   f"{format_cpu(used.get('cpu', 0))}/{format_bytes(used.get('memory', 0))}", m["tasks"]]
            if wide:
                row += [format_bytes(cap["disk"]), m.get("gpu_model") or "", m.get("isolation") or "",
                        m.get("address") or ""]
            rows.append(row + [",".join(f"{k}={v}" for k, v in m["attributes"].items())])
        table(rows, ["MACHINE", "STATE", "CPU", "MEMORY", "GPU", "FREE CPU", "FREE MEM", "RESERVED", "USED", "TASKS"]
              + (["DISK", "GPU MODEL", "ISOLATION", "ADDRESS"] if wide else []) + ["LABELS"])

    @app.command("shares")
    def shares(output: Output = output_option()) -> None:
        """Fair shares: per group and user, the dominant share (divided by weight), weight, running and pending."""
        with calling("shares") as client:
            data = client.shares()
        if print_data(data, output):
            return
        rows = [[s["name"], s["kind"], s.get("group") or "", f"{s['weight']:g}", f"{100 * s['dominant_share']:.2f}%",
                 s["dominant_resource"], s["running"], s["pending"]] for s in data["groups"] + data["users"]]
        typer.echo(f"queue order: {data['order']}")
        table(rows, ["NAME", "KIND", "GROUP", "WEIGHT", "DOMINANT SHARE", "RESOURCE", "RUNNING", "PENDING"])
