"""``POST /api/v1/agents/{machine}/notify``: an agent tells the master of task changes as they happen.

The body (docs/agent-protocol.md)::

    {"incarnation": "1733...", "seq": 7, "tasks": [TaskStatus, ...]}

becomes ``AgentReport(machine, tasks, incarnation, full=False)``. The poll
(link.py) stays the authority; a notification only brings its news forward,
so anything that makes one doubtful makes the master ignore it (200 with
``"applied": false`` and why) rather than act on it:

* the machine is not up: only a poll answer brings a lost machine back
  (``MachineUp`` with the full state, which takes back the tasks it still
  runs); a partial report of a lost machine would kill those tasks instead;
* the incarnation is not the one the link's last poll saw: the agent
  restarted since (or this is a late body of its previous life, whose
  statuses may carry the same generations as the tasks it runs now);
* a body of the same incarnation with a ``seq`` not above the newest one
  applied: it was overtaken (a retry that arrived late).

A notification never counts as a poll answer: see ``LinkShards.poll``.
Refusals use the master's error body: 400 naming the field, 401/403, 404
for an unknown machine, 413 for a body over ``MAX_BODY`` bytes.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from fastapi import APIRouter, Request, Security

from corral.master.commands import AgentReport
from corral.master.auth import bearer, check_machine_certificate, may_speak_for
from corral.master.errors import AdmissionError
from corral.master.inputs import parse_json
from corral.master.reports import startup_seconds
from corral.master.responses import NotifyReply, error_responses

PREFIX = "/api/v1"
MAX_BODY = 1 << 20  # the agent sends at most 500 statuses a body, well under this
MAX_TASKS = 5_000
TASK_STATES = ("starting", "running", "backoff", "finished", "failed", "killed")
BODY_FIELDS = {"incarnation", "seq", "tasks"}


def parse_notification(data: Any) -> tuple[str, int, list[dict[str, Any]]]:
    """``(incarnation, seq, tasks)`` of a decoded body; AdmissionError 400 naming every bad field."""
    if not isinstance(data, dict):
        raise AdmissionError(400, [("body", f"expected a JSON object, got {type(data).__name__}")])
    errors = [(k or "\"\"", "unknown field") for k in sorted(map(str, set(data) - BODY_FIELDS))]
    incarnation = data.get("incarnation")
    if isinstance(incarnation, bool) or not isinstance(incarnation, (str, int)) or not str(incarnation):
        errors.append(("incarnation", f"expected the agent's incarnation (a string or integer), got {incarnation!r}"))
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        errors.append(("seq", f"expected the report's sequence number (an integer >= 0), got {seq!r}"))
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        errors.append(("tasks", f"expected a list of TaskStatus objects, got {type(tasks).__name__}"))
        tasks = []
    elif len(tasks) > MAX_TASKS:
        errors.append(("tasks", f"expected at most {MAX_TASKS} statuses, got {len(tasks)}"))
        tasks = []
    for i, status in enumerate(tasks):
        errors += _status_errors(f"tasks[{i}]", status)
    if errors:
        raise AdmissionError(400, errors)
    return str(incarnation), seq, tasks


def _status_errors(where: str, status: Any) -> list[tuple[str, str]]:
    if not isinstance(status, dict):
        return [(where, f"expected a TaskStatus object, got {type(status).__name__}")]
    errors = []
    task = status.get("task_id")
    if not isinstance(task, str) or not task or len(task) > 512:
        errors.append((f"{where}.task_id", f"expected a task name, got {task!r}"))
    generation = status.get("generation")
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        errors.append((f"{where}.generation", f"expected an integer >= 0, got {generation!r}"))
    if status.get("state") not in TASK_STATES:
        errors.append((f"{where}.state", f"expected one of {', '.join(TASK_STATES)}, got {status.get('state')!r}"))
    for key in ("exit_code", "failures", "pid"):
        value = status.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            errors.append((f"{where}.{key}", f"expected an integer or null, got {value!r}"))
    startup = status.get("startup_s")
    if startup is not None and not startup_seconds(startup):
        errors.append((f"{where}.startup_s", f"expected seconds (a number >= 0) or null, got {startup!r}"))
    last_error = status.get("last_error")
    if last_error is not None and not isinstance(last_error, str):
        errors.append((f"{where}.last_error", f"expected a string or null, got {last_error!r}"))
    return errors


async def _bounded_body(request: Request) -> Any:
    too_big = AdmissionError(413, [("body", f"expected at most {MAX_BODY} bytes")])
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_big
        chunks.append(chunk)
    return parse_json(b"".join(chunks))


def notify_router(master: Any, principal_of: Callable[[str], Any]) -> APIRouter:
    """The notify route for ``master``; ``principal_of(authorization header)`` authenticates
    (raising the API's 401) and returns the caller's Principal."""
    router = APIRouter()
    marks: dict[str, tuple[str, int]] = {}  # machine -> (incarnation, seq) of the newest body applied
    marks_lock = threading.Lock()

    def ignored(machine: str, why: str) -> dict[str, Any]:
        return {"machine": machine, "applied": False, "ignored": why}

    @router.post(PREFIX + "/agents/{machine}/notify", summary="An agent reports task changes between polls (role agent)",
                 response_model=NotifyReply, responses=error_responses(400, 401, 403, 404, 413, 503),
                 dependencies=[Security(bearer)],
                 openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["incarnation", "seq", "tasks"], "properties": {
                         "incarnation": {"type": "string"}, "seq": {"type": "integer", "minimum": 0},
                         "tasks": {"type": "array", "items": {"type": "object"}}}}}}}})
    async def notify(machine: str, request: Request) -> dict[str, Any]:
        who = principal_of(request.headers.get("authorization", ""))
        if who.role not in ("agent", "admin"):
            raise AdmissionError(403, [("authorization", "notifying task changes needs an agent (or admin) token")],
                                 "forbidden")
        may_speak_for(who, machine, "machine")
        check_machine_certificate(master, request.scope, machine, who.role)
        incarnation, seq, tasks = parse_notification(await _bounded_body(request))
        link = getattr(master, "link", None)
        with master.lock:  # the checks and the command see the same state
            record = master.core.state.machines.get(machine)
            if record is None:
                raise AdmissionError(404, [("machine", f"no machine {machine}; register it first")], "not_found")
            if record.state != "up":
                return ignored(machine, f"machine {machine} is {record.state}; its next poll answer brings it back")
            polled = link.incarnation_of(machine) if link is not None else None
            if polled is not None and polled != incarnation:
                return ignored(machine, f"incarnation {incarnation} is not the one the last poll saw ({polled})")
            with marks_lock:
                mark = marks.get(machine)
                if mark is not None and mark[0] == incarnation and seq <= mark[1]:
                    return ignored(machine, f"report {seq} arrived after report {mark[1]}")
                marks[machine] = (incarnation, seq)
            reply, durable = master.submit_command(AgentReport(machine, tasks, incarnation, full=False))
        await master.adurable(durable)  # a failed store: 503, not a 500
        return {**reply, "applied": True}

    return router
