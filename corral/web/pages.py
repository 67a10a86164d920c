"""The cell, jobs and users pages: API answers in, (title, live part, static part) out.

Each page function takes the API (corral.web.proxy.Api), the session and the
query, asks the API what it needs and builds HTML with corral.web.html (all
text escaped). The live part is what the browser re-fetches every few
seconds; the static part (filter forms) stays as the user left it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from corral.model.priority import BANDS_HIGH_TO_LOW, band_of
from corral.web.html import SHOWN, Html, bar, join, link, tag, table, void
from corral.web.proxy import Api
from corral.web.session import Session

BANDS = tuple(b.value for b in BANDS_HIGH_TO_LOW)
RESOURCES = ("cpu", "memory", "disk", "gpu")
JOB_STATES = ("pending", "running", "succeeded", "failed", "killed", "dead")
Page = tuple[str, Html, Html]


def when(t: float | None) -> str:
    """An instant in RFC 3339 (UTC, seconds)."""
    if not t:
        return ""
    return datetime.fromtimestamp(float(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def band(priority: int) -> str:
    return band_of(int(priority)).value


def state_word(word: str) -> Html:
    return tag("span", word, class_=f"state s-{word}")


def band_legend() -> Html:
    return tag("p", "allocated by band: ", *(tag("span", b, class_=f"chip seg {b}") for b in BANDS),
               tag("span", "| used", class_="chip used-key"), class_="legend muted")


# ---- the cell -------------------------------------------------------------------------------------


def resource_cell(machine: dict[str, Any], resource: str) -> Html:
    total = machine["capacity"][resource]
    if total <= 0:
        return tag("span", "none", class_="muted")
    parts = [(b, machine["allocated"][b][resource]) for b in BANDS]
    allocated = sum(amount for _, amount in parts)
    used = sum(machine["used"][b][resource] for b in BANDS) if resource in ("cpu", "memory") else None
    show = SHOWN[resource]
    words = f"{show(allocated)} of {show(total)} allocated" + (f", {show(used)} used" if used is not None else "")
    return join([bar(parts, total, used), tag("small", words)])


def machines_table(machines: list[dict[str, Any]]) -> Html:
    rows = [[link(m["name"], "machines", m["name"]), state_word(m["state"]), m["tasks"],
             *(resource_cell(m, r) for r in RESOURCES)] for m in machines]
    return table(["machine", "state", "tasks", *RESOURCES], rows, class_="machines")


def pending_by_reason(tasks: list[dict[str, Any]], count: int) -> Html:
    if not count:
        return tag("p", "No task is waiting.", class_="muted")
    reasons: Counter[str] = Counter()
    jobs: dict[str, list[str]] = {}
    for task in tasks:
        reason = task.get("reason") or "waiting for the next scheduling round"
        reasons[reason] += 1
        seen = jobs.setdefault(reason, [])
        if task["job"] not in seen:
            seen.append(task["job"])
    rows = [[n, tag("span", reason, class_="reason"), join([link(j, "jobs", j) for j in jobs[reason][:5]], ", ")]
            for reason, n in reasons.most_common()]
    note = [] if len(tasks) == count else [tag("p", f"(the first {len(tasks)} of {count} pending tasks)",
                                                class_="muted")]
    return join([table(["tasks", "why they wait", "jobs"], rows, class_="pending"), *note])


async def cell_page(api: Api, session: Session, query: dict[str, str]) -> Page:
    cell, usage, pending = await asyncio.gather(
        api.get(session.token, "/cell"), api.get(session.token, "/usage/machines"),
        api.get(session.token, "/tasks", state="pending", limit=2000))
    counts = cell["tasks"]
    summary = tag("p", f"{cell['machines']} machines, {cell['jobs']} jobs; tasks: ",
                  join([f"{counts.get(w, 0)} {w}" for w in ("pending", "starting", "running", "restarting")], ", "),
                  f"; store {cell['store']}", class_="summary")
    broken = tag("p", f"The master takes no commands: {cell['broken']}", class_="error") if cell["broken"] else ""
    body = join([summary, broken, tag("h2", "Machines"), band_legend(), machines_table(usage["machines"]),
                 tag("h2", "Pending work by reason"), pending_by_reason(pending["tasks"], pending["count"])])
    return f"Cell {cell['cell']}", body, Html("")


# ---- jobs -----------------------------------------------------------------------------------------


def _select(name: str, choices: tuple[str, ...], chosen: str) -> Html:
    options = [tag("option", "any", value="")] + [tag("option", c, value=c, selected=c == chosen) for c in choices]
    return tag("label", name, " ", tag("select", *options, name=name))


def jobs_filter(query: dict[str, str]) -> Html:
    return tag("form", tag("label", "user ", void("input", name="user", value=query.get("user", ""), size=12)),
               _select("state", JOB_STATES, query.get("state", "")), _select("band", BANDS, query.get("band", "")),
               tag("button", "Filter", type="submit"), method="get", action="/ui/jobs", class_="filters")


def counts_line(states: dict[str, int]) -> str:
    return ", ".join(f"{n} {w}" for w, n in states.items() if n and w != "dead")


async def jobs_page(api: Api, session: Session, query: dict[str, str]) -> Page:
    wanted = query.get("band") or None
    if wanted is not None and wanted not in BANDS:
        wanted = "?"  # no job is in an unknown band: an empty list, as the API answers an unknown user
    answer = await api.get(session.token, "/jobs", user=query.get("user"), state=query.get("state"), limit=5000)
    jobs = [j for j in answer["jobs"] if wanted is None or band(j["priority"]) == wanted]
    jobs.sort(key=lambda j: -float(j["submitted_at"]))
    rows = [[link(j["job"], "jobs", j["job"]), j["user"], state_word(j["state"]), j["priority"], band(j["priority"]),
             j["tasks"], counts_line(j["task_states"]), when(j["submitted_at"]), j["reason"] or ""] for j in jobs]
    body = join([tag("p", f"{len(jobs)} jobs", class_="summary"),
                 table(["job", "user", "state", "priority", "band", "tasks", "task states", "submitted", "ended"],
                       rows, class_="jobs")])
    return "Jobs", body, jobs_filter(query)


# ---- users ----------------------------------------------------------------------------------------


def vector(v: dict[str, int] | None) -> str:
    if v is None:
        return "no quota"
    shown = [f"{SHOWN[r](v[r])} {r}" for r in RESOURCES if v.get(r)]
    return ", ".join(shown) or "0"


async def users_page(api: Api, session: Session, query: dict[str, str]) -> Page:
    shares = await api.get(session.token, "/usage/users")
    rows = []
    for user in shares["users"]:
        for name in BANDS:
            entry = user["bands"].get(name)
            if entry is None:
                continue
            rows.append([link(user["user"], "jobs", user=user["user"]), name, vector(entry["running"]),
                         vector(entry["pending"]), vector(entry["charged"]), vector(entry["quota"]),
                         f"{100 * user['dominant_share']:.1f} %"])
    body = join([tag("p", f"cell capacity: {vector(shares['capacity'])}", class_="summary"),
                 table(["user", "band", "running (limits)", "pending (limits)", "charged to quota", "quota",
                        "dominant share"], rows, class_="users")
                 if rows else tag("p", "No user has a live job.", class_="muted"),
                 tag("p", "The dominant share is the largest fraction of the cell's capacity, in any resource, held "
                          "by the user's running tasks (Dominant Resource Fairness orders users by it within a "
                          "band).", class_="muted")])
    return "Users", body, Html("")

