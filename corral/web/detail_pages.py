"""The pages of one job and of one machine: tasks, pending reasons, events, usage over time, actions.

A job's spec is shown with its ``env`` values only to the job's owner: any
other viewer (an admin included) sees the names with the values hidden, since
environments carry secrets and the UI is for looking, not for borrowing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from corral.web.html import SHOWN, Html, chart, cpu, join, link, mem, path, tag, table, void
from corral.web.pages import BANDS, RESOURCES, Page, band, band_legend, counts_line, resource_cell, state_word, when
from corral.web.proxy import Api
from corral.web.session import Session

HIDDEN = "(hidden: only the job's owner sees env values)"
SERIES = 8  # tasks drawn per chart


def q(segment: str) -> str:
    """A path segment for the API (a name never adds a segment of its own)."""
    return quote(segment, safe="")


def redacted(spec: dict[str, Any], owner: bool) -> dict[str, Any]:
    if owner or not isinstance(spec.get("env"), dict):
        return spec
    return {**spec, "env": {key: HIDDEN for key in spec["env"]}}


def _exit(task: dict[str, Any]) -> str:
    last = task.get("last_exit")
    if not last:
        return ""
    code = "did not start" if last.get("code") is None else f"exit {last['code']}"
    return f"{code} {last.get('error') or ''}".strip()


def tasks_table(tasks: list[dict[str, Any]], with_job: bool = False) -> Html:
    rows = []
    for t in tasks:
        why = t.get("reason") or ""
        reason = tag("span", why, class_="reason") if t["state"] == "pending" else why
        first = [link(t["job"], "jobs", t["job"])] if with_job else []
        rows.append([*first, t["index"], state_word(t["state"]), t.get("detail") or "",
                     link(t["machine"], "machines", t["machine"]) if t.get("machine") else "",
                     t["restarts"], _exit(t), reason])
    headers = (["job"] if with_job else []) + ["task", "state", "detail", "machine", "restarts", "last exit",
                                               "pending reason / last change"]
    return table(headers, rows, class_="tasks")


def events_table(events: list[dict[str, Any]], limit: int = 50) -> Html:
    newest = list(reversed(events))[:limit]
    rows = [[when(e["t"]), e["object"], e["via"], f"{e.get('from') or '(new)'} → {e['to']}", e.get("note") or ""]
            for e in newest]
    note = tag("p", f"the newest {limit} of {len(events)}", class_="muted") if len(events) > limit else ""
    return join([table(["time", "object", "via", "change", "note"], rows, class_="events"), note])


def usage_charts(usage: dict[str, Any]) -> Html:
    drawn = [t for t in usage["tasks"] if t["history"]][:SERIES]
    label = lambda t: "task " + t["task"].split(".", 1)[0]  # noqa: E731
    return join([chart("CPU used per task", [(label(t), [(s["t"], s["cpu"]) for s in t["history"]]) for t in drawn],
                       cpu),
                 chart("Memory used per task",
                       [(label(t), [(s["t"], s["memory"]) for s in t["history"]]) for t in drawn], mem)])


def actions(job: dict[str, Any], session: Session) -> Html:
    """Kill, priority and scale forms (each asks for confirmation) for whoever may change the job."""
    if job["state"] in ("succeeded", "failed", "killed") or not (session.who.admin or session.who.user == job["user"]):
        return Html("")
    jid = job["job"]

    def form(action: str, label: str, confirm: str, *fields: Html) -> Html:
        return tag("form", *fields, void("input", type="hidden", name="csrf", value=session.csrf),
                   void("input", type="hidden", name="confirmed", value=""),
                   tag("button", label, type="submit", class_="danger" if action == "kill" else None),
                   method="post", action=path("jobs", jid, action), data_confirm=confirm, class_=f"action {action}")

    return tag("section", tag("h2", "Actions"),
               form("kill", "Kill job", f"Kill job {jid}? Its tasks are stopped."),
               form("priority", "Set priority", f"Change the priority of job {jid} to {{priority}}?",
                    tag("label", "priority ", void("input", type="number", name="priority", min=0, max=11,
                                                    value=job["priority"], required=True))),
               form("scale", "Scale", f"Scale job {jid} to {{tasks}} tasks?",
                    tag("label", "tasks ", void("input", type="number", name="tasks", min=1, value=job["tasks"],
                                                 required=True))),
               class_="actions")


async def job_page(api: Api, session: Session, jid: str) -> Page:
    token, ref = session.token, q(jid)
    job, events, usage = await asyncio.gather(api.get(token, f"/jobs/{ref}"), api.get(token, f"/jobs/{ref}/events"),
                                              api.get(token, f"/usage/jobs/{ref}"))
    owner = session.who.user == job["user"]
    ended = f" ({job['reason']})" if job.get("reason") else ""
    facts = tag("p", state_word(job["state"]), ended, f" · user {job['user']} · priority {job['priority']} "
                f"({band(job['priority'])}) · {job['tasks']} tasks: {counts_line(job['task_states'])} · submitted "
                f"{when(job['submitted_at'])}" + (f" · after {job['after']}" if job.get("after") else ""),
                class_="summary")
    spec = json.dumps(redacted(job["spec"], owner), indent=2, sort_keys=True)
    body = join([facts, tag("h2", "Tasks"), tasks_table(job["task_list"]), tag("h2", "Usage over time"),
                 usage_charts(usage), tag("h2", "Events"), events_table(events["events"]),
                 tag("details", tag("summary", "Spec"), tag("pre", spec, class_="spec"))])
    return f"Job {job['job']}", body, actions(job, session)


async def machine_page(api: Api, session: Session, name: str) -> Page:
    token, ref = session.token, q(name)
    machine, tasks, usage = await asyncio.gather(api.get(token, f"/machines/{ref}"),
                                                 api.get(token, "/tasks", machine=name, limit=5000),
                                                 api.get(token, f"/usage/machines/{ref}"))
    labels = ", ".join(f"{k}={v}" for k, v in sorted(machine["attributes"].items())) or "none"
    facts = tag("p", state_word(machine["state"]), f" · agent {machine['address'] or '(none)'} · isolation "
                f"{machine['isolation']} · GPU model {machine['gpu_model'] or '(none)'} · labels {labels}",
                class_="summary")
    rows = [[b, *(f"{SHOWN[r](usage['allocated'][b][r])}" for r in RESOURCES), cpu(usage["used"][b]["cpu"]),
             mem(usage["used"][b]["memory"])] for b in BANDS]
    rows.append(["capacity", *(SHOWN[r](usage["capacity"][r]) for r in RESOURCES), "", ""])
    per_band = table(["band", *(f"{r} allocated" for r in RESOURCES), "cpu used", "memory used"], rows,
                     class_="per-band")
    bars = table(RESOURCES, [[resource_cell(usage, r) for r in RESOURCES]], class_="machines")
    history = usage["history"]
    charts = join([chart("CPU", [("used", [(s["t"], s["cpu"]) for s in history]),
                                 ("allocated", [(s["t"], s["cpu_allocated"]) for s in history])], cpu),
                   chart("Memory", [("used", [(s["t"], s["memory"]) for s in history]),
                                    ("allocated", [(s["t"], s["memory_allocated"]) for s in history])], mem)])
    live = tasks["tasks"]
    body = join([facts, band_legend(), bars, per_band, tag("h2", "Allocation and usage over time"), charts,
                 tag("h2", f"Tasks ({len(live)})"), tasks_table(live, with_job=True)])
    return f"Machine {machine['name']}", body, Html("")
