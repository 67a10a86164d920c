"""The master's HTTP API (FastAPI) under ``/api/v1``; the OpenAPI description is at ``/openapi.json``.

Auth: ``Authorization: Bearer <token>`` from the tokens file. Anyone with a
token may read; a user changes only their own jobs; admins change anything
and may register machines; agents (role ``agent``) register their machine.
Errors are JSON: ``{"error": kind, "message": sentence, "errors": [{"field",
"message"}]}`` with a 4xx status; a 500 only for a bug (logged).

This module is the routes only: who may call them (corral.master.auth), what
they read (corral.master.inputs), what they answer (corral.master.views
building corral.master.responses models).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.master import dry_run, views
from corral.master.auth import (Authenticator, Principal, Tokens, bearer, bearer_token, check_machine_certificate,
                                forbidden, may_change, may_read_secrets, may_register, may_speak_for, principal_of,
                                user_of)
from corral.master.commands import Kill, Submit, Update
from corral.master.errors import AdmissionError
from corral.master.inputs import labels, mapping, parse_json, register_command
from corral.master.failover import last_machine
from corral.master.gate import FollowerGate
from corral.master.middleware import BodyLimit, CatchAll, FastSubmit
from corral.master.allocs_api import allocs_router
from corral.master.names_api import names_router
from corral.master.naming import resolve_job, resolve_task
from corral.master.history_api import history_router
from corral.master.metrics import CONTENT_TYPE
from corral.master.notify import notify_router
from corral.master.records import TaskRecord
from corral.master.plan_api import plans_router
from corral.master.rollout_api import rollout_router
from corral.master.responses import (CellSummary, DryRunReply, DryRunUpdateReply, ErrorBody, JobDetail, JobEvents, JobList, JobReply, JobTasks,
                                     MachineDetail, MachineList, MasterRole, RegisterReply, TaskDetail, TaskList, UpdateReply,
                                     WhyView, error_response, error_responses)
from corral.master.service import Master, MasterUnavailable
from corral.master.shares import SharesView, shares_view
from corral.master.usage_api import usage_router
from corral.master.wait_api import wait_router
from corral.model.validation import field_errors
from corral.web.app import ui_router

PREFIX = "/api/v1"
READ = error_responses(400, 401, 404, 503)
TASK_INDEX = PathParam(ge=0, lt=100_000, description="the task's index in its job")  # a job has <= 100,000 tasks
STREAM = Query("stdout", json_schema_extra={"enum": ["stdout", "stderr"]})
LABEL_ITEM = {"type": "string", "pattern": "^[^=]+=.*$"}  # key=value
CHANGE = error_responses(400, 401, 403, 404, 409, 413, 422, 503)
DRY_RUN = Query(False, alias="dry_run", description="say what it would do (placements, preemptions, pending "
                                                   "reasons, restart waves) without changing anything")


async def submit(master: Master, tokens: Tokens, authorization: str, request_id: str | None,
                 raw: bytes, dry: bool = False) -> dict[str, Any]:
    """Submit from the raw request: the logic of ``POST /jobs``, shared by the route and the fast
    path (``FastSubmit``). A spec without a user is the caller's. ``dry``: what it would do (dry_run.py)."""
    who = user_of(tokens, authorization)
    spec = mapping(parse_json(raw))
    if "user" not in spec and "owner" not in spec:
        spec = {**spec, "user": who.user}
    may_change(who, str(spec.get("user", spec.get("owner"))))
    if dry:
        return await run_in_threadpool(dry_run.run, master, Submit(spec))
    return await master.aexecute(Submit(spec, request_id=request_id))


def _body(schema: str) -> dict[str, Any]:
    """The request body of a route that reads its JSON itself (to name bad fields its own way)."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}}


def _document_bodies(app: FastAPI) -> None:
    """Add the JobSpec and MachineRegistration schemas to the OpenAPI description."""
    from fastapi.openapi.utils import get_openapi

    from corral.master.openapi_rules import CONSTRAINT, tighten
    from corral.model.allocset import AllocSetSpec

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            _drop_framework_422(schema)
            _document_body_limit(schema)
            _errors_are_json(schema)
            # JobSpec, JobUpdate, MachineRegistration, the notification and the path names, with
            # every rule admission enforces that JSON Schema can state (openapi_rules.py)
            tighten(schema)
            body = AllocSetSpec.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in body.pop("$defs", {}).items():
                components.setdefault(name, definition)  # the tightened JobSpec's, where they share one
            body["required"] = [f for f in body.get("required", []) if f != "user"]  # the caller's
            if "constraints" in body.get("properties", {}):  # the grammar admission reads, as the job's
                body["properties"]["constraints"] = {"type": "array", "default": [],
                                                     "items": {"type": "string", "pattern": CONSTRAINT}}
            components["AllocSetSpec"] = body
            # what POST /jobs takes: a job, or an alloc set (kind: allocset; docs/allocs.md)
            components["Submission"] = {"title": "Submission", "oneOf": [
                {"$ref": "#/components/schemas/JobSpec"}, {"$ref": "#/components/schemas/AllocSetSpec"}]}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_framework_422(schema: dict[str, Any]) -> None:
    """FastAPI documents a 422 ``HTTPValidationError`` on every route with parameters; this API
    answers bad parameters with a 400 ``ErrorBody`` (see ``_handle_errors``), so drop it."""
    framework = "#/components/schemas/HTTPValidationError"
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422", {})
            if answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") == framework:
                del operation["responses"]["422"]
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def _document_body_limit(schema: dict[str, Any]) -> None:
    """BodyLimit answers 413 on every route (a GET with a 2 MiB body too): say so on each."""
    from corral.master.responses import error_responses as documented

    too_large = documented(413)[413]
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            if "413" not in answers:
                answers["413"] = {"description": too_large["description"],
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


def _errors_are_json(schema: dict[str, Any]) -> None:
    """A plain-text route (the logs) still answers its errors as JSON ``ErrorBody``; FastAPI
    documents every answer of such a route as text/plain."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if status >= "400" and "text/plain" in content:
                    answer["content"] = {"application/json": content.pop("text/plain")}


def _handle_errors(app: FastAPI) -> None:
    """Every refusal as an ``ErrorBody``."""

    @app.exception_handler(AdmissionError)
    async def _admission(request: Request, exc: AdmissionError) -> JSONResponse:
        return error_response(exc.status, exc.kind, exc.errors)

    @app.exception_handler(MasterUnavailable)
    async def _unavailable(request: Request, exc: MasterUnavailable) -> JSONResponse:
        return error_response(503, "unavailable", [("master", str(exc))])

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid", field_errors(exc.errors(), default="request", request=True))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        field = "path" if exc.status_code in (404, 405) else "request"
        kind = "not_found" if exc.status_code == 404 else "invalid"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = allowed_methods(app, request.scope)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; expected {' or '.join(allowed)}"
            return error_response(405, kind, [(field, message)], headers=headers)
        return error_response(exc.status_code, kind, [(field, str(exc.detail))], headers=headers or None)


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """The methods of every route whose path matches ``scope``'s (the router names only the first
    route's in ``Allow``; a path like /jobs/{job} has three routes)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        if getattr(route, "methods", None) and route.matches(scope)[0] is not Match.NONE:
            methods |= set(route.methods)
    return sorted(methods)


def create_app(master: Master, tokens: Tokens) -> FastAPI:
    app = FastAPI(title="corral master", version="1", description=__doc__)
    _document_bodies(app)
    _handle_errors(app)
    core = master.core
    state = core.state

    def fresh(tasks: list[TaskRecord]) -> list[TaskRecord]:
        """The tasks, their pending reasons made true of the cell as it is now (under the lock)."""
        view = state.view
        top = int(view.version.max()) if len(view) else -1  # one scan of the machines for them all
        for task in tasks:
            core.pending_reason(task, top)
        return tasks
    auth = Authenticator(tokens)
    caller, changer = Depends(auth.anyone), Depends(auth.user)  # any known token; a user's or an admin's
    submit_here = partial(submit, master, tokens)
    app.include_router(notify_router(master, partial(principal_of, tokens)))  # POST /agents/{machine}/notify
    app.include_router(history_router(master, auth.anyone))  # GET /events
    app.include_router(wait_router(master, caller))  # GET /machines/{machine}/wait: the wait-time matrix
    app.include_router(usage_router(master, caller))  # GET /usage/...: allocation, usage over time, shares
    app.include_router(allocs_router(master, caller))  # GET /allocs[/{allocset}]: alloc sets and their allocs
    app.include_router(names_router(master, caller))  # GET /names/{job}[?watch=true]: endpoints (and DNS's records)
    app.include_router(rollout_router(master, auth.user))  # POST /jobs/{job}/rollback
    app.include_router(plans_router(master, auth.anyone))  # /schedulers: profiles, external snapshots and plans
    app.include_router(ui_router(app, tokens))  # the web UI under /ui (it calls this API in process)
    app.add_middleware(FastSubmit, path=PREFIX + "/jobs", submit=submit_here)
    app.add_middleware(BodyLimit)  # every route, the fast path included: 413 past MAX_BODY bytes
    app.add_middleware(FollowerGate, master=master)  # a follower sends writes to the leader
    app.add_middleware(CatchAll)  # outermost

    def find_task(ref: str, who: Principal) -> TaskRecord:
        name = resolve_task(ref, who.user, state.cell)
        task = state.tasks.get(name)
        if task is None:
            raise AdmissionError(404, [("task", f"no task {name}")], "not_found")
        return task

    # ---- jobs ----------------------------------------------------------------------------------

    @app.post(PREFIX + "/jobs", status_code=201, summary="Submit a job (idempotent with X-Request-Id)",
              openapi_extra=_body("Submission"), response_model=JobReply,
              responses={200: {"model": JobReply | DryRunReply,
                               "description": "the job an earlier X-Request-Id submitted; with dry_run, what "
                                              "submitting would do (nothing is stored)"},
                         **error_responses(400, 401, 403, 409, 413, 422, 503)},
              dependencies=[Security(bearer)])  # submit() reads the token, as the fast path does
    async def submit_job(request: Request, dry_run_: bool = DRY_RUN) -> JSONResponse:
        reply = await submit_here(request.headers.get("authorization", ""),
                                  request.headers.get("x-request-id") or request.headers.get("idempotency-key"),
                                  await request.body(), dry=dry_run_)
        return JSONResponse(reply, status_code=200 if reply.get("duplicate") or dry_run_ else 201)

    @app.get(PREFIX + "/jobs", summary="List jobs", response_model=JobList, responses=READ)
    async def list_jobs(who: Principal = caller, user: str | None = None,
                        state_: str | None = Query(None, alias="state", description=", ".join(views.JOB_WORDS),
                                                   json_schema_extra={"enum": list(views.JOB_WORDS)}),
                        limit: int = Query(1000, ge=1, le=100_000)) -> JobList:
        wanted = views.job_filter(state_)
        with master.lock:
            jobs = [j for j in state.jobs.values() if (user is None or j.user == user) and (wanted is None or wanted(j))]
            return JobList(jobs=[views.job_summary(state, j) for j in jobs[:limit]], count=len(jobs))

    @app.get(PREFIX + "/jobs/{job}", summary="One job", response_model=JobDetail, responses=READ)
    async def get_job(job: str, who: Principal = caller) -> JobDetail:
        with master.lock:
            record = core.job(resolve_job(job, who.user))
            fresh(state.tasks_of(record.id))
            return views.job_detail(state, record, core.clock.now(), secrets=may_read_secrets(who, record.user))

    @app.put(PREFIX + "/jobs/{job}", summary="Update a job (priority in place, resources by rolling restart)",
             openapi_extra=_body("JobUpdate"), response_model=UpdateReply | DryRunUpdateReply, responses=CHANGE)
    async def update(job: str, request: Request, who: Principal = changer,
                     max_unavailable: int = Query(1, ge=1),
                     dry_run_: bool = DRY_RUN) -> UpdateReply | DryRunUpdateReply:
        spec = mapping(parse_json(await request.body()))
        jid = resolve_job(job, who.user)
        name, owner = jid.split(".")
        spec = {"user": owner, **spec} if "user" not in spec and "owner" not in spec else spec
        if spec.get("name", name) != name or spec.get("user", spec.get("owner")) != owner:
            raise AdmissionError(400, [("name", f"expected the spec of job {jid}, got "
                                                f"{spec.get('name')}.{spec.get('user', spec.get('owner'))}")])
        may_change(who, owner)
        command = Update({"name": name, **spec}, max_unavailable=max_unavailable)
        if dry_run_:
            return DryRunUpdateReply(**await run_in_threadpool(dry_run.run, master, command))
        return UpdateReply(**await master.aexecute(command))

    async def kill(job: str, who: Principal = changer) -> JobReply:
        jid = resolve_job(job, who.user)
        with master.lock:
            record = core.job(jid)
        may_change(who, record.user)
        return JobReply(**await master.aexecute(Kill(jid)))

    for route in (app.post(PREFIX + "/jobs/{job}/kill", summary="Kill a job", response_model=JobReply,
                           responses=CHANGE, operation_id="kill_job_post"),
                  app.delete(PREFIX + "/jobs/{job}", summary="Kill a job", response_model=JobReply,
                             responses=CHANGE, operation_id="kill_job_delete")):
        route(kill)

    @app.get(PREFIX + "/jobs/{job}/tasks", summary="A job's tasks", response_model=JobTasks, responses=READ)
    async def job_tasks(job: str, who: Principal = caller) -> JobTasks:
        with master.lock:
            record, now = core.job(resolve_job(job, who.user)), core.clock.now()
            return JobTasks(tasks=[views.task_view(state, t, now) for t in fresh(state.tasks_of(record.id))])

    @app.get(PREFIX + "/jobs/{job}/events", summary="The event history of a job and its tasks",
             response_model=JobEvents, responses=READ)
    async def job_events(job: str, who: Principal = caller) -> JobEvents:
        with master.lock:
            return views.job_events(state, core.job(resolve_job(job, who.user)))

    # ---- tasks ---------------------------------------------------------------------------------

    @app.get(PREFIX + "/tasks", summary="List tasks", response_model=TaskList, responses=READ)
    async def list_tasks(who: Principal = caller, user: str | None = None,
                         state_: str | None = Query(None, alias="state", description=", ".join(
                             views.TASK_FILTER_WORDS) + " (running: placed; dead: ended)",
                             json_schema_extra={"enum": list(views.TASK_FILTER_WORDS)}),
                         job: str | None = None, machine: str | None = None,
                         label: list[str] = Query(default=[], description="key=value: on a machine with this label",
                                                  json_schema_extra={"items": LABEL_ITEM}),
                         limit: int = Query(1000, ge=1, le=100_000)) -> TaskList:
        wanted = views.task_filter(state_)
        pairs = labels(label)
        with master.lock:
            jid = resolve_job(job, who.user) if job else None
            on = None
            if pairs:
                on = {n for n, m in state.machines.items() if all(m.attributes.get(k) == v for k, v in pairs)}
            tasks = [t for t in state.tasks.values()
                     if (jid is None or t.job == jid) and (machine is None or t.machine == machine)
                     and (wanted is None or wanted(t)) and (on is None or t.machine in on)
                     and (user is None or state.jobs[t.job].user == user)]
            now = core.clock.now()
            return TaskList(tasks=[views.task_view(state, t, now) for t in fresh(tasks[:limit])], count=len(tasks))

    @app.get(PREFIX + "/jobs/{job}/tasks/{index}/why", summary="Why a task is pending", response_model=WhyView,
             responses=READ)
    async def why_by_index(job: str, index: int = TASK_INDEX, who: Principal = caller) -> WhyView:
        return await why(f"{job}/{index}", who)

    @app.get(PREFIX + "/tasks/{task:path}/why", summary="Why a task is pending", response_model=WhyView,
             responses=READ)
    async def why(task: str, who: Principal = caller) -> WhyView:
        with master.lock:
            return views.why_view(fresh([find_task(task, who)])[0], core.clock.now(), core.state)

    logs_responses = {200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                            "description": "the last lines of the stream"},
                      **READ, **error_responses(403),  # the logs are for the job's owner and admins
                      502: {"model": ErrorBody, "description": "the task's agent answered an error"}}

    @app.get(PREFIX + "/jobs/{job}/tasks/{index}/logs", summary="A task's recent log, from its agent",
             response_class=PlainTextResponse, responses=logs_responses)
    async def logs_by_index(job: str, index: int = TASK_INDEX, who: Principal = caller, stream: str = STREAM,
                            tail: int = Query(100, ge=1, le=10_000)) -> PlainTextResponse:
        return await task_logs(f"{job}/{index}", who, stream, tail)

    @app.get(PREFIX + "/tasks/{task:path}/logs", summary="A task's recent log, from its agent",
             response_class=PlainTextResponse, responses=logs_responses)
    async def task_logs(task: str, who: Principal = caller, stream: str = STREAM,
                        tail: int = Query(100, ge=1, le=10_000)) -> PlainTextResponse:
        if stream not in ("stdout", "stderr"):
            raise AdmissionError(400, [("stream", f"expected stdout or stderr, got {stream!r}")])
        with master.lock:
            record = find_task(task, who)
            owner = state.jobs[record.job].user
            if not may_read_secrets(who, owner):
                raise forbidden(f"the logs of {record.name} are for its owner {owner} and admins")
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

    @app.get(PREFIX + "/tasks/{task:path}", summary="A task by name (INDEX.JOB.USER.CELL or JOB/INDEX): where it runs",
             response_model=TaskDetail, responses=READ)
    async def get_task(task: str, who: Principal = caller) -> TaskDetail:
        with master.lock:
            return views.task_detail_view(state, fresh([find_task(task, who)])[0], core.clock.now())

    # ---- machines ------------------------------------------------------------------------------

    @app.get(PREFIX + "/machines", summary="List machines; label=key=value filters", response_model=MachineList,
             responses=READ)
    async def list_machines(who: Principal = caller,
                            label: list[str] = Query(default=[], json_schema_extra={"items": LABEL_ITEM}),
                            state_: str | None = Query(None, alias="state", description="up or lost",
                                                       json_schema_extra={"enum": ["up", "lost"]})) -> MachineList:
        pairs = labels(label)
        if state_ is not None and state_ not in ("up", "lost"):
            raise AdmissionError(400, [("state", f"expected up or lost, got {state_!r}")])
        with master.lock:
            machines = [views.machine_view(state, n, core.reservations) for n, m in sorted(state.machines.items())
                        if all(m.attributes.get(k) == v for k, v in pairs) and (state_ is None or m.state == state_)]
        return MachineList(machines=machines, count=len(machines))

    @app.post(PREFIX + "/agents/register", summary="An agent registers its machine (role agent)",
              openapi_extra=_body("MachineRegistration"), response_model=RegisterReply, responses=CHANGE)
    async def agent_register(request: Request, who: Principal = caller) -> RegisterReply:
        may_register(who, through_agents=True)
        command = register_command(parse_json(await request.body()))
        may_speak_for(who, command.name, "name")
        check_machine_certificate(master, request.scope, command.name, who.role)
        reply = await master.aexecute(command)
        link = getattr(master, "link", None)
        if link is not None:  # the agent accepts the token it registered with on its own API
            link.remember_token(command.name, bearer_token(request.headers.get("authorization", "")) or "")
        return RegisterReply(**reply)

    @app.post(PREFIX + "/machines", status_code=201, summary="An admin registers a machine",
              openapi_extra=_body("MachineRegistration"), response_model=RegisterReply, responses=CHANGE)
    async def admin_register(request: Request, who: Principal = caller) -> RegisterReply:
        may_register(who, through_agents=False)
        return RegisterReply(**await master.aexecute(register_command(parse_json(await request.body()))))

    @app.get(PREFIX + "/machines/{name}", summary="One machine and its tasks", response_model=MachineDetail,
             responses=READ)
    async def get_machine(name: str, who: Principal = caller) -> MachineDetail:
        with master.lock:
            return views.machine_detail(state, name, core.assignments(name), core.reservations)

    # ---- the cell --------------------------------------------------------------------------------

    @app.get(PREFIX + "/shares", summary="Fair shares: per user and group, dominant share, weight, running, pending",
             response_model=SharesView, responses=READ)
    async def shares(who: Principal = caller) -> SharesView:
        with master.lock:
            return shares_view(state, core.scheduler)

    @app.get(PREFIX + "/cell", summary="The cell at a glance", response_model=CellSummary, responses=READ)
    async def cell(who: Principal = caller) -> CellSummary:
        with master.lock:
            return views.cell_summary(state, master.store.kind, master.unavailable() or "")

    @app.get(PREFIX + "/master", summary="This master among the cell's masters: role, pid, applied seq",
             response_model=MasterRole, responses=READ)
    async def this_master(request: Request, who: Principal = caller) -> MasterRole:
        return MasterRole(**{"url": str(request.base_url).rstrip("/"), **master.role_info()})

    # Prometheus' text format, for scrapers without tokens (as /healthz): counts, no secrets.
    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(await run_in_threadpool(master.metrics.rendered), media_type=CONTENT_TYPE)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"ok": master.unavailable() is None}

    return app
