"""The master's HTTP API (FastAPI) under ``/api/v1``; the OpenAPI description is at ``/openapi.json``.

Auth: ``Authorization: Bearer <token>`` from the tokens file. Anyone with a
token may read; a user changes only their own jobs; admins change anything
and may register machines; agents (role ``agent``) register their machine.
Errors are JSON: ``{"error": kind, "message": sentence, "errors": [{"field",
"message"}]}`` with a 4xx status; a 500 only for a bug (logged).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, Field
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.model.job import JobState, TaskState
from corral.master.admission import AdmissionError, Principal, Tokens
from corral.master.commands import Kill, RegisterMachine, Submit, Update
from corral.master.naming import resolve_job, resolve_task
from corral.master.notify import notify_router
from corral.master.records import JobRecord, TaskRecord
from corral.master.service import Master, MasterUnavailable

log = logging.getLogger(__name__)
PREFIX = "/api/v1"


def _error(status: int, kind: str, errors: list[tuple[str, str]]) -> JSONResponse:
    message = "; ".join(f"{f}: {m}" for f, m in errors)
    return JSONResponse({"error": kind, "message": message,
                         "errors": [{"field": f, "message": m} for f, m in errors]}, status_code=status)


class Unauthorized(AdmissionError):
    def __init__(self, message: str):
        super().__init__(401, [("authorization", message)], "unauthorized")


def _forbidden(message: str) -> AdmissionError:
    return AdmissionError(403, [("authorization", message)], "forbidden")


async def _json_body(request: Request) -> Any:
    return _parse_json(await request.body())


def _parse_json(raw: bytes) -> Any:
    if not raw:
        raise AdmissionError(400, [("body", "expected a JSON object, got an empty body")])
    try:
        return json.loads(raw, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise AdmissionError(400, [("body", f"expected a JSON object, got invalid JSON ({e})")]) from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def _labels(texts: list[str]) -> list[tuple[str, str]]:
    """``["rack=r1", "zone=a"]`` -> ``[("rack", "r1"), ("zone", "a")]``; a 400 naming ``label`` otherwise."""
    pairs = []
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise AdmissionError(400, [("label", f"expected key=value, got {text!r}")])
        pairs.append((key, value))
    return pairs


def _mapping(data: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise AdmissionError(400, [(what, f"expected a JSON object, got {type(data).__name__}")])
    return data


class CatchAll:
    """The catch-all for true bugs: log the traceback, answer a JSON 500, keep the connection."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = _error(500, "internal", [("master", f"internal error ({type(exc).__name__}); "
                                                           "see the master's log")])
            await response(scope, receive, send)


def _body(schema: str) -> dict[str, Any]:
    """The request body of a route that reads its JSON itself (to name bad fields its own way)."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}}


class MachineRegistration(BaseModel):
    """``POST /api/v1/agents/register`` and ``POST /api/v1/machines`` (docs/agent-protocol.md).
    Integers are corral's units (millicores, bytes); strings are quantities ("8", "16Gi")."""

    name: str
    address: str = ""
    capacity: dict[str, int | str] = Field(description="cpu, memory, disk, gpu")
    gpu_model: str = ""
    attributes: dict[str, str] = {}
    isolation: str = ""


def _document_bodies(app: FastAPI) -> None:
    """Add the JobSpec and MachineRegistration schemas to the OpenAPI description."""
    from fastapi.openapi.utils import get_openapi

    from corral.model.spec import JobSpec

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (JobSpec, MachineRegistration):
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class FastSubmit:
    """``POST /api/v1/jobs`` straight to the submit logic, skipping the framework's routing layers
    (submission is the hot path: the benchmark's 1,000/s). Same logic, same answers and errors as
    the documented route, which handles it when this is not installed."""

    MAX_BODY = 1 << 20

    def __init__(self, app: Any, submit: Any):
        self.app, self.submit = app, submit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PREFIX + "/jobs":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.MAX_BODY:
                return await _error(413, "invalid", [("body", f"expected at most {self.MAX_BODY} bytes")])(
                    scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        try:
            reply = await self.submit(headers.get("authorization", ""),
                                      headers.get("x-request-id") or headers.get("idempotency-key"), b"".join(chunks))
        except AdmissionError as e:
            response = _error(e.status, e.kind, e.errors)
        except MasterUnavailable as e:
            response = _error(503, "unavailable", [("master", str(e))])
        else:
            response = JSONResponse(reply, status_code=200 if reply.get("duplicate") else 201)
        await response(scope, receive, send)


def create_app(master: Master, tokens: Tokens) -> FastAPI:
    app = FastAPI(title="corral master", version="1", description=__doc__)
    _document_bodies(app)
    core = master.core
    state = core.state

    def principal(request: Request) -> Principal:
        return principal_of(request.headers.get("authorization", ""))

    def principal_of(header: str) -> Principal:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("expected the header 'Authorization: Bearer <token>'")
        found = tokens.lookup(token.strip())
        if found is None:
            raise Unauthorized("unknown token")
        return found

    def user_principal(request: Request) -> Principal:
        who = principal(request)
        if who.role == "agent":
            raise _forbidden("an agent token may only register its machine")
        return who

    def may_change(who: Principal, owner: str) -> None:
        if not who.admin and who.user != owner:
            raise _forbidden(f"user {who.user} may not change jobs of user {owner}")

    @app.exception_handler(AdmissionError)
    async def _admission(request: Request, exc: AdmissionError) -> JSONResponse:
        return _error(exc.status, exc.kind, exc.errors)

    @app.exception_handler(MasterUnavailable)
    async def _unavailable(request: Request, exc: MasterUnavailable) -> JSONResponse:
        return _error(503, "unavailable", [("master", str(exc))])

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
            errors.append((".".join(loc) or "request", err.get("msg", "invalid").replace("Input should be", "expected")))
        return _error(400, "invalid", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        field = "path" if exc.status_code in (404, 405) else "request"
        return _error(exc.status_code, "not_found" if exc.status_code == 404 else "invalid", [(field, str(exc.detail))])

    app.include_router(notify_router(master, principal_of))  # POST /agents/{machine}/notify
    app.add_middleware(FastSubmit, submit=lambda *a: submit_raw(*a))
    app.add_middleware(CatchAll)  # outermost

    # ---- views ---------------------------------------------------------------------------------

    def task_view(task: TaskRecord) -> dict[str, Any]:
        job = state.jobs[task.job]
        machine = state.machines.get(task.machine) if task.machine else None
        view = {"name": task.name, "job": task.job, "user": job.user, "index": task.index, "state": task.state.value,
                "machine": task.machine, "address": machine.address if machine else None,
                "ports": list(job.spec.resources.ports) if task.state is TaskState.RUNNING else [],
                "gpus": list(task.gpus), "generation": task.generation, "version": task.version}
        if task.state is TaskState.PENDING:
            view["reason"] = task.reason or "waiting for the next scheduling round"
        elif task.history:
            view["reason"] = task.history[-1].note
        return view

    def job_view(job: JobRecord, detail: bool = False) -> dict[str, Any]:
        counts = {s.value: 0 for s in TaskState}
        for task in state.tasks_of(job.id):
            if task.index < job.spec.tasks or task.state is not TaskState.DEAD:
                counts[task.state.value] += 1
        view = {"job": job.id, "name": job.name, "user": job.user, "state": job.state.value,
                "priority": job.spec.priority, "tasks": job.spec.tasks, "task_states": counts,
                "version": job.version, "submitted_at": job.submitted_at, "after": job.spec.after}
        if job.history:
            view["last"] = {"via": job.history[-1].via, "note": job.history[-1].note}
        if detail:
            view["spec"] = job.spec_dict
        return view

    def find_job(ref: str, who: Principal) -> JobRecord:
        jid = resolve_job(ref, who.user)
        return core.job(jid)

    def find_task(ref: str, who: Principal) -> TaskRecord:
        name = resolve_task(ref, who.user, state.cell)
        task = state.tasks.get(name)
        if task is None:
            raise AdmissionError(404, [("task", f"no task {name}")], "not_found")
        return task

    def _state_filter(value: str | None, allowed: type) -> Any:
        if value is None:
            return None
        try:
            return allowed(value)
        except ValueError:
            raise AdmissionError(400, [("state", f"expected one of {', '.join(s.value for s in allowed)}, "
                                                 f"got {value!r}")]) from None

    # ---- jobs ----------------------------------------------------------------------------------

    @app.post(PREFIX + "/jobs", status_code=201, summary="Submit a job (idempotent with X-Request-Id)",
              openapi_extra=_body("JobSpec"))
    async def submit(request: Request) -> JSONResponse:
        reply = await submit_raw(request.headers.get("authorization", ""),
                                 request.headers.get("x-request-id") or request.headers.get("idempotency-key"),
                                 await request.body())
        return JSONResponse(reply, status_code=200 if reply.get("duplicate") else 201)

    async def submit_raw(authorization: str, request_id: str | None, raw: bytes) -> dict[str, Any]:
        """Submit from the raw request; shared by the route and the fast path (``FastSubmit``)."""
        who = principal_of(authorization)
        if who.role == "agent":
            raise _forbidden("an agent token may only register its machine")
        spec = _mapping(_parse_json(raw))
        if "user" not in spec and "owner" not in spec:
            spec = {**spec, "user": who.user}
        may_change(who, str(spec.get("user", spec.get("owner"))))
        return await master.aexecute(Submit(spec, request_id=request_id))

    @app.get(PREFIX + "/jobs", summary="List jobs")
    async def list_jobs(request: Request, user: str | None = None, state_: str | None = Query(None, alias="state"),
                        limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
        principal(request)
        wanted = _state_filter(state_, JobState)
        with master.lock:
            jobs = [job_view(j) for j in state.jobs.values()
                    if (user is None or j.user == user) and (wanted is None or j.state is wanted)]
        return {"jobs": jobs[:limit], "count": len(jobs)}

    @app.get(PREFIX + "/jobs/{job}", summary="One job")
    async def get_job(job: str, request: Request) -> dict[str, Any]:
        who = principal(request)
        with master.lock:
            record = find_job(job, who)
            view = job_view(record, detail=True)
            view["task_list"] = [task_view(t) for t in state.tasks_of(record.id)
                                 if t.index < record.spec.tasks or t.state is not TaskState.DEAD]
        return view

    @app.put(PREFIX + "/jobs/{job}", summary="Update a job (priority in place, resources by rolling restart)",
             openapi_extra=_body("JobSpec"))
    async def update(job: str, request: Request, max_unavailable: int = Query(1, ge=1)) -> dict[str, Any]:
        who = user_principal(request)
        spec = _mapping(await _json_body(request))
        jid = resolve_job(job, who.user)
        name, owner = jid.split(".")
        spec = {"user": owner, **spec} if "user" not in spec and "owner" not in spec else spec
        if spec.get("name", name) != name or spec.get("user", spec.get("owner")) != owner:
            raise AdmissionError(400, [("name", f"expected the spec of job {jid}, got "
                                                f"{spec.get('name')}.{spec.get('user', spec.get('owner'))}")])
        spec = {"name": name, **spec}
        may_change(who, owner)
        return await master.aexecute(Update(spec, max_unavailable=max_unavailable))

    async def _kill(job: str, request: Request) -> dict[str, Any]:
        who = user_principal(request)
        jid = resolve_job(job, who.user)
        with master.lock:
            record = core.job(jid)
        may_change(who, record.user)
        return await master.aexecute(Kill(jid))

    app.post(PREFIX + "/jobs/{job}/kill", summary="Kill a job")(_kill)
    app.delete(PREFIX + "/jobs/{job}", summary="Kill a job")(_kill)

    @app.get(PREFIX + "/jobs/{job}/tasks", summary="A job's tasks")
    async def job_tasks(job: str, request: Request) -> dict[str, Any]:
        who = principal(request)
        with master.lock:
            record = find_job(job, who)
            return {"tasks": [task_view(t) for t in state.tasks_of(record.id)]}

    @app.get(PREFIX + "/jobs/{job}/events", summary="The event history of a job and its tasks")
    async def job_events(job: str, request: Request) -> dict[str, Any]:
        who = principal(request)
        with master.lock:
            record = find_job(job, who)
            events = [{"object": record.id, "kind": "job", **t.to_dict()} for t in record.history]
            for task in state.tasks_of(record.id):
                events += [{"object": task.name, "kind": "task", **t.to_dict()} for t in task.history]
        events.sort(key=lambda e: (e["seq"], e["kind"] != "job", e["object"]))
        return {"job": record.id, "events": events}

    # ---- tasks ---------------------------------------------------------------------------------

    @app.get(PREFIX + "/tasks", summary="List tasks")
    async def list_tasks(request: Request, user: str | None = None, state_: str | None = Query(None, alias="state"),
                         job: str | None = None, machine: str | None = None,
                         label: list[str] = Query(default=[], description="key=value: on a machine with this label"),
                         limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
        who = principal(request)
        wanted = _state_filter(state_, TaskState)
        labels = _labels(label)
        with master.lock:
            jid = resolve_job(job, who.user) if job else None
            on = None
            if labels:
                on = {n for n, m in state.machines.items() if all(m.attributes.get(k) == v for k, v in labels)}
            tasks = [task_view(t) for t in state.tasks.values()
                     if (jid is None or t.job == jid) and (machine is None or t.machine == machine)
                     and (wanted is None or t.state is wanted) and (on is None or t.machine in on)
                     and (user is None or state.jobs[t.job].user == user)]
        return {"tasks": tasks[:limit], "count": len(tasks)}

    @app.get(PREFIX + "/jobs/{job}/tasks/{index}/why", summary="Why a task is pending")
    async def why_by_index(job: str, index: int, request: Request) -> dict[str, Any]:
        return await why(f"{job}/{index}", request)

    @app.get(PREFIX + "/tasks/{task:path}/why", summary="Why a task is pending")
    async def why(task: str, request: Request) -> dict[str, Any]:
        who = principal(request)
        with master.lock:
            record = find_task(task, who)
            reply = {"task": record.name, "state": record.state.value}
            if record.state is TaskState.PENDING:
                reply["summary"] = record.reason or "waiting for the next scheduling round"
                reply["explanation"] = record.explanation
            else:
                last = record.history[-1] if record.history else None
                reply["summary"] = (f"the task is {record.state.value}"
                                    + (f" on {record.machine}" if record.machine else "")
                                    + (f" ({last.via}: {last.note})" if last and last.note else ""))
                reply["explanation"] = None
        return reply

    @app.get(PREFIX + "/jobs/{job}/tasks/{index}/logs", summary="A task's recent log, from its agent",
             response_class=PlainTextResponse)
    async def logs_by_index(job: str, index: int, request: Request, stream: str = "stdout",
                            tail: int = Query(100, ge=1, le=10_000)) -> PlainTextResponse:
        return await task_logs(f"{job}/{index}", request, stream, tail)

    @app.get(PREFIX + "/tasks/{task:path}/logs", summary="A task's recent log, from its agent",
             response_class=PlainTextResponse)
    async def task_logs(task: str, request: Request, stream: str = "stdout",
                        tail: int = Query(100, ge=1, le=10_000)) -> PlainTextResponse:
        from corral.master.liveness import last_machine
        from starlette.concurrency import run_in_threadpool

        who = principal(request)
        if stream not in ("stdout", "stderr"):
            raise AdmissionError(400, [("stream", f"expected stdout or stderr, got {stream!r}")])
        with master.lock:
            record = find_task(task, who)
            name, machine = record.name, record.machine or last_machine(record.history)
        link = getattr(master, "link", None)
        if not machine:
            raise AdmissionError(404, [("task", f"task {name} has not run anywhere yet")], "not_found")
        if link is None:
            raise AdmissionError(503, [("master", "this master has no link to its agents")], "unavailable")
        status, text = await run_in_threadpool(link.logs, machine, name, stream, tail)
        if status == 404:
            raise AdmissionError(404, [("task", f"machine {machine} no longer has the log of {name}")], "not_found")
        if status != 200:
            raise AdmissionError(502, [("agent", f"the agent of {machine} answered {status}: {text[:200]}")],
                                 "unavailable")
        return PlainTextResponse(text)

    @app.get(PREFIX + "/tasks/{task:path}", summary="A task by name (INDEX.JOB.USER.CELL or JOB/INDEX): where it runs")
    async def get_task(task: str, request: Request) -> dict[str, Any]:
        who = principal(request)
        with master.lock:
            record = find_task(task, who)
            view = task_view(record)
            view["history"] = [t.to_dict() for t in record.history]
        return view

    # ---- machines ------------------------------------------------------------------------------

    def machine_view(name: str) -> dict[str, Any]:
        m = state.machines[name]
        view = m.to_dict()
        at = state.view.index.get(name)
        if at is not None:
            free = state.view.free[at]
            view["free"] = {"cpu": int(free[0]), "memory": int(free[1]), "disk": int(free[2]),
                            "gpu_milli": int(free[3])}
            view["tasks"] = len(state.view.tasks[at])
        else:
            view["free"], view["tasks"] = None, 0
        return view

    @app.get(PREFIX + "/machines", summary="List machines; label=key=value filters")
    async def list_machines(request: Request, label: list[str] = Query(default=[]),
                            state_: str | None = Query(None, alias="state")) -> dict[str, Any]:
        principal(request)
        wanted = _labels(label)
        if state_ is not None and state_ not in ("up", "lost"):
            raise AdmissionError(400, [("state", f"expected up or lost, got {state_!r}")])
        with master.lock:
            machines = [machine_view(n) for n, m in sorted(state.machines.items())
                        if all(m.attributes.get(k) == v for k, v in wanted) and (state_ is None or m.state == state_)]
        return {"machines": machines, "count": len(machines)}

    def _register_command(body: dict[str, Any]) -> RegisterMachine:
        body = _mapping(body)
        unknown = set(body) - {"name", "address", "capacity", "gpu_model", "attributes", "isolation"}
        errors = [(k or '""', "unknown field") for k in sorted(unknown)]
        for key in ("name", "address", "gpu_model", "isolation"):
            if key in body and not isinstance(body[key], str):
                errors.append((key, f"expected a string, got {body[key]!r}"))
        if "name" not in body:
            errors.append(("name", "required field is missing"))
        if not isinstance(body.get("capacity"), dict):
            errors.append(("capacity", "expected a mapping {cpu, memory, disk, gpu}"))
        if not isinstance(body.get("attributes", {}), dict):
            errors.append(("attributes", "expected a mapping of labels"))
        if errors:
            raise AdmissionError(400, errors)
        return RegisterMachine(body["name"], body["capacity"], body.get("address", ""), body.get("gpu_model", ""),
                               body.get("attributes", {}), body.get("isolation", ""))

    @app.post(PREFIX + "/agents/register", summary="An agent registers its machine (role agent)",
              openapi_extra=_body("MachineRegistration"))
    async def agent_register(request: Request) -> dict[str, Any]:
        who = principal(request)
        if who.role not in ("agent", "admin"):
            raise _forbidden("registering a machine needs an agent (or admin) token")
        command = _register_command(await _json_body(request))
        reply = await master.aexecute(command)
        link = getattr(master, "link", None)
        if link is not None:  # the agent accepts the token it registered with on its own API
            link.remember_token(command.name, request.headers.get("authorization", "").partition(" ")[2].strip())
        return reply

    @app.post(PREFIX + "/machines", status_code=201, summary="An admin registers a machine",
              openapi_extra=_body("MachineRegistration"))
    async def admin_register(request: Request) -> dict[str, Any]:
        who = principal(request)
        if not who.admin:
            raise _forbidden("registering a machine through the API needs an admin token")
        return await master.aexecute(_register_command(await _json_body(request)))

    @app.get(PREFIX + "/machines/{name}", summary="One machine and its tasks")
    async def get_machine(name: str, request: Request) -> dict[str, Any]:
        principal(request)
        with master.lock:
            if name not in state.machines:
                raise AdmissionError(404, [("machine", f"no machine {name}")], "not_found")
            view = machine_view(name)
            view["task_list"] = core.assignments(name)
        return view

    # ---- the cell --------------------------------------------------------------------------------

    @app.get(PREFIX + "/cell", summary="The cell at a glance")
    async def cell(request: Request) -> dict[str, Any]:
        principal(request)
        with master.lock:
            tasks = {s.value: 0 for s in TaskState}
            for t in state.tasks.values():
                tasks[t.state.value] += 1
            return {"cell": state.cell, "seq": state.seq, "machines": len(state.machines), "jobs": len(state.jobs),
                    "tasks": tasks, "store": master.store.kind, "broken": str(master.broken or "")}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"ok": master.broken is None}

    return app
