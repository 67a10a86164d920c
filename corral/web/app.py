"""The UI's routes under ``/ui``: sign-in, the pages, their live parts, and the actions.

``GET /ui/<page>`` answers the whole page; with the header
``X-Corral-Fragment: 1`` only its live part (what ui.js swaps in every few
seconds: no full reloads). ``POST /ui/jobs/{job}/kill|priority|scale`` changes a
job through the API with the session's token, once confirmed (``confirmed=1``:
ui.js asks first; without scripts the UI answers a confirmation page). See
corral.web.session for the cookie and the form token, corral.web.proxy for
how every call goes through the API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from corral.master.auth import Tokens
from corral.web.detail_pages import job_page, machine_page, q
from corral.web.html import Html, join, layout, path, tag, void
from corral.web.pages import Page, cell_page, jobs_page, users_page
from corral.web.proxy import Api, ApiError
from corral.web.session import Session, Sessions, clear_cookie, set_cookie

STATIC = Path(__file__).parent / "static"
ASSETS = {"ui.js": "text/javascript", "ui.css": "text/css"}
FRAGMENT = "x-corral-fragment"
HEADERS = {
    # No inline script runs (ui.js is a file); inline style attributes only (the bars' widths).
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
ACTIONS = {"kill": None, "priority": "priority", "scale": "tasks"}


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=HEADERS)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a /ui page of this site, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/cell"


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the UI's forms and ui.js send nothing else)."""
    body = (await request.body())[:65536].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def login_page(message: str = "", target: str = "", status: int = 200) -> HTMLResponse:
    form = tag("form", tag("label", "Token ", void("input", type="password", name="token", autocomplete="off",
                                                     required=True, autofocus=True)),
               void("input", type="hidden", name="next", value=_safe_next(target)),
               tag("button", "Sign in", type="submit"), method="post", action="/ui/login", class_="login")
    note = tag("p", "A token of the master's tokens file (corral up writes yours to the CLI config). The UI keeps "
                    "it in a cookie for /ui only, out of reach of scripts.", class_="muted")
    error = tag("p", message, class_="error") if message else ""
    head = tag("head", void("meta", charset="utf-8"), tag("title", "Sign in · corral"),
               void("link", rel="stylesheet", href="/ui/static/ui.css"))
    page = tag("html", head, tag("body", tag("main", tag("h1", "corral"), error, form, note)), lang="en")
    return _html("<!doctype html>" + page, status)


def ui_router(app: FastAPI, tokens: Tokens, sessions: Sessions | None = None) -> APIRouter:
    """The UI's routes; they call ``app``'s own /api/v1 with each session's token."""
    router = APIRouter(prefix="/ui", include_in_schema=False)
    sessions = sessions or Sessions(tokens)
    api = Api(app)

    def to_login(request: Request) -> Response:
        if request.headers.get(FRAGMENT):
            return JSONResponse({"ok": False, "message": "sign in again"}, status_code=401, headers=HEADERS)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(path("login", next=target), status_code=303)

    async def show(request: Request, nav: str, build: Callable[[Session], Awaitable[Page]]) -> Response:
        session = sessions.of(request)
        if session is None:
            return to_login(request)
        try:
            title, live, static = await build(session)
            status = 200
        except ApiError as e:
            title, live, static, status = "Not here" if e.status == 404 else "Refused", tag(
                "p", e.message, class_="error"), Html(""), e.status
        if request.headers.get(FRAGMENT):
            return _html(live, status)
        return _html(layout(title, live, session.who.user, session.csrf, nav, static), status)

    @router.get("")
    @router.get("/")
    async def home() -> Response:
        return RedirectResponse("/ui/cell", status_code=303)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in ASSETS:
            return _html("not found", 404)
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

    @router.get("/login")
    async def login_form(request: Request, next: str = "") -> Response:
        return login_page(target=next)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        token = form.get("token", "").strip()
        if sessions.lookup(token) is None:
            return login_page("Unknown token (or not a user's or an admin's).", form.get("next", ""), 401)
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        set_cookie(response, request, token)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session, form = sessions.of(request), await _form(request)
        if session is not None and not sessions.form_ok(request, session, form.get("csrf", "")):
            return _html("this form is stale: reload the page", 403)
        response = RedirectResponse("/ui/login", status_code=303)
        clear_cookie(response)
        return response

    @router.get("/cell")
    async def cell(request: Request) -> Response:
        return await show(request, "cell", lambda s: cell_page(api, s, dict(request.query_params)))

    @router.get("/jobs")
    async def jobs(request: Request) -> Response:
        return await show(request, "jobs", lambda s: jobs_page(api, s, dict(request.query_params)))

    @router.get("/users")
    async def users(request: Request) -> Response:
        return await show(request, "users", lambda s: users_page(api, s, dict(request.query_params)))

    @router.get("/jobs/{job}")
    async def job(job: str, request: Request) -> Response:
        return await show(request, "jobs", lambda s: job_page(api, s, job))

    @router.get("/machines/{name}")
    async def machine(name: str, request: Request) -> Response:
        return await show(request, "cell", lambda s: machine_page(api, s, name))

    @router.post("/jobs/{job}/{action}")
    async def act(job: str, action: str, request: Request) -> Response:
        session = sessions.of(request)
        if session is None:
            return to_login(request)
        form = await _form(request)
        if action not in ACTIONS:
            return _answer(request, job, 404, f"no action {action!r}: expected kill, priority or scale")
        if not sessions.form_ok(request, session, form.get("csrf", "")):
            return _answer(request, job, 403, "this form is stale or from elsewhere: reload the page")
        if form.get("confirmed") != "1":
            return _confirm(session, job, action, form)
        try:
            message = await _change(api, session, job, action, form)
        except ApiError as e:
            return _answer(request, job, e.status, e.message)
        return _answer(request, job, 200, message)

    return router


async def _change(api: Api, session: Session, job: str, action: str, form: dict[str, str]) -> str:
    """Carry out one action through the API; what happened, in words (ApiError if refused)."""
    ref = q(job)
    if action == "kill":
        reply = await api.call(session.token, "POST", f"/jobs/{ref}/kill")
        return f"Job {reply['job']}: {reply['state']}."
    field = ACTIONS[action]
    raw = form.get(field, "").strip()
    if not raw.isascii() or not raw.lstrip("-").isdigit():
        raise ApiError(400, f"{field}: expected an integer, got {raw!r}")
    spec = (await api.get(session.token, f"/jobs/{ref}"))["spec"]
    spec[field] = int(raw)
    reply = await api.call(session.token, "PUT", f"/jobs/{ref}", json=spec)
    changed = ", ".join(reply.get("changed") or []) or "nothing changed"
    return f"Job {reply['job']}: {field} {raw} ({changed})."


def _answer(request: Request, job: str, status: int, message: str) -> Response:
    """To ui.js: JSON ``{ok, message}``; to a plain form: back to the job, or the refusal."""
    if request.headers.get(FRAGMENT):
        return JSONResponse({"ok": status == 200, "message": message}, status_code=status, headers=HEADERS)
    if status == 200:
        return RedirectResponse(path("jobs", job), status_code=303)
    body = join([tag("p", message, class_="error"), tag("p", tag("a", "back to the job", href=path("jobs", job)))])
    return _html("<!doctype html>" + tag("html", tag("body", tag("main", tag("h1", "Refused"), body))), status)


def _confirm(session: Session, job: str, action: str, form: dict[str, str]) -> HTMLResponse:
    """The confirmation step for a browser without scripts: the same form, confirmed."""
    field = ACTIONS[action]
    what = f"Kill job {job}?" if field is None else f"Set {field} of job {job} to {form.get(field, '')}?"
    fields: list[Any] = [void("input", type="hidden", name="csrf", value=session.csrf),
                         void("input", type="hidden", name="confirmed", value="1")]
    if field is not None:
        fields.append(void("input", type="hidden", name=field, value=form.get(field, "")))
    confirm = tag("form", *fields, tag("button", "Yes", type="submit"), method="post",
                  action=path("jobs", job, action))
    body = join([tag("p", what), confirm, tag("p", tag("a", "No, back to the job", href=path("jobs", job)))])
    return _html(layout("Confirm", body, session.who.user, session.csrf, "jobs"))
