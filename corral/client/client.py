"""``Client(addr, token)``: corral's API from Python (synchronous, over the standard library's http.client).

Every method is one call of the master's ``/api/v1`` and answers with the
API's own response model (corral.master.responses, pydantic), or raises
:class:`corral.client.ApiError` with the master's field errors. Reads and
kills are tried again when no answer came (or a 502-504); a submission is
tried again with the same request id, so the master answers a repeat with
the job the first attempt created and nothing is submitted twice.

``Client(..., typed=False)`` answers with the plain JSON instead: the
``corral`` command uses that, so it starts without pydantic and prints what
the API said.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

from corral.client.errors import ApiError
from corral.client.transport import Transport

ENDED_WORDS = ("succeeded", "failed", "killed")


class Client:
    def __init__(self, addr: str, token: str, timeout_s: float = 30.0, connect_timeout_s: float = 5.0,
                 retries: int = 2, typed: bool = True, ca: str | None = None, failover_s: float = 15.0):
        # addr: one master's URL, or several comma-separated (a replicated master; see Transport)
        self.http = Transport(addr, token, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
                              ca=ca, failover_s=failover_s)
        self.addr, self.retries, self.typed = self.http.addr, retries, typed

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- scheduler profiles ----------------------------------------------------------------------

    def schedulers(self) -> dict[str, Any]:
        """``{"schedulers": [...]}``: every scheduler profile, the jobs it owns and what it did."""
        return self.http.call("GET", "/schedulers")

    # ---- jobs ----------------------------------------------------------------------------------

    def submit(self, spec: dict[str, Any] | str | Path, request_id: str | None = None) -> Any:
        """Submit a job (a spec mapping, or the path of a YAML or JSON file) -> ``JobReply``. A spec
        without ``user`` is the token's user's."""
        body = load_spec(spec) if isinstance(spec, (str, Path)) else spec
        rid = request_id or uuid.uuid4().hex
        return self._typed("JobReply", self.http.call("POST", "/jobs", json=body, headers={"X-Request-Id": rid},
                                                      retries=self.retries))

    def plan(self, spec: dict[str, Any] | str | Path, max_unavailable: int = 1) -> Any:
        """What submitting ``spec`` would do now, or updating its job if one of that name is live
        (``?dry_run=true``: nothing is stored) -> ``DryRunReply`` or ``DryRunUpdateReply``."""
        body = load_spec(spec) if isinstance(spec, (str, Path)) else spec
        ref = job_ref(body)
        try:
            live = self.http.call("GET", f"/jobs/{ref}")["state"] not in ENDED_WORDS
        except ApiError as e:
            if e.status != 404:
                raise
            live = False
        if live:
            return self._typed("DryRunUpdateReply", self.http.call(
                "PUT", f"/jobs/{ref}", json=body, params={"max_unavailable": max_unavailable, "dry_run": "true"}))
        return self._typed("DryRunReply", self.http.call("POST", "/jobs", json=body, params={"dry_run": "true"},
                                                         retries=self.retries))

    def get(self, job: str) -> Any:
        """One job with its tasks (``NAME`` is yours, or ``NAME.USER``) -> ``JobDetail``."""
        return self._typed("JobDetail", self._get(f"/jobs/{job}"))

    def list(self, user: str | None = None, state: str | None = None, limit: int | None = None) -> Any:
        """Jobs, optionally of one user or in one state -> ``JobList``."""
        return self._typed("JobList", self._get("/jobs", _params(user=user, state=state, limit=limit)))

    def kill(self, job: str) -> Any:
        """Kill a job -> ``JobReply`` (killing an ended job changes nothing, so it is safe to repeat)."""
        return self._typed("JobReply", self.http.call("POST", f"/jobs/{job}/kill", retries=self.retries))

    def rollback(self, job: str) -> Any:
        """Roll a job back to its spec before its last update -> ``RollbackReply`` (not retried: a
        second rollback would go forward again)."""
        return self._typed("RollbackReply", self.http.call("POST", f"/jobs/{job}/rollback"))

    def update(self, spec: dict[str, Any] | str | Path, max_unavailable: int = 1, job: str | None = None) -> Any:
        """Change a job (priority and task count in place, anything else by a rolling restart with at
        most ``max_unavailable`` tasks down) -> ``UpdateReply``. ``job`` defaults to the spec's
        ``name`` (and ``user``)."""
        body = load_spec(spec) if isinstance(spec, (str, Path)) else spec
        ref = job or job_ref(body)
        return self._typed("UpdateReply", self.http.call("PUT", f"/jobs/{ref}", json=body,
                                                         params={"max_unavailable": max_unavailable}))

    def allocsets(self, user: str | None = None, all: bool = False) -> Any:
        """Alloc sets (live ones; ``all``: ended too) with their allocs -> ``AllocSetList``."""
        return self._typed("AllocSetList", self._get("/allocs", _params(user=user, all="true" if all else None)))

    def allocset(self, name: str) -> Any:
        """One alloc set (``NAME`` is yours, or ``NAME.USER``) with its allocs -> ``AllocSetView``."""
        return self._typed("AllocSetView", self._get(f"/allocs/{name}"))

    def job_events(self, job: str) -> Any:
        """Every transition of a job and its tasks -> ``JobEvents``."""
        return self._typed("JobEvents", self._get(f"/jobs/{job}/events"))

    # ---- tasks, machines, the cell ---------------------------------------------------------------

    def tasks(self, job: str | None = None, user: str | None = None, state: str | None = None,
              machine: str | None = None, labels: Iterable[str] = (), limit: int | None = None) -> Any:
        """Tasks matching every filter given (``labels``: ``key=value`` of their machine) -> ``TaskList``."""
        params = _params(job=job, user=user, state=state, machine=machine, limit=limit)
        if labels:
            params["label"] = list(labels)
        return self._typed("TaskList", self._get("/tasks", params))

    def task(self, task: str) -> Any:
        """One task (``JOB/INDEX`` or its full name) with its transitions -> ``TaskDetail``."""
        return self._typed("TaskDetail", self._get(f"/tasks/{task}"))

    def why(self, task: str) -> Any:
        """Why a task waits, in the scheduler's words and record -> ``WhyView``."""
        return self._typed("WhyView", self._get(f"/tasks/{task}/why"))

    def logs(self, task: str, stream: str = "stdout", tail: int = 100) -> str:
        """The last ``tail`` lines a task wrote to ``stream`` (from the agent where it runs or ran)."""
        return self.http.text("GET", f"/tasks/{task}/logs", params={"stream": stream, "tail": tail},
                              retries=self.retries)

    def follow_logs(self, task: str, stream: str = "stdout", tail: int = 100, poll_s: float = 1.0,
                    window: int = 1000) -> Iterator[str]:
        """The last ``tail`` lines, then each new line as the task writes it (read every ``poll_s``);
        ends once the task has ended and its last lines are out."""
        seen: list[str] = []
        first = True
        while True:
            ended = _task_word(self._get(f"/tasks/{task}")) in ENDED_WORDS
            lines = self.logs(task, stream, tail if first else window).splitlines()
            yield from (lines if first else new_lines(seen, lines))
            seen, first = lines, False
            if ended:
                return
            time.sleep(poll_s)

    def machines(self, labels: Iterable[str] = (), state: str | None = None) -> Any:
        """The cell's machines (``labels``: ``key=value`` each must have; ``state``: up or lost) -> ``MachineList``."""
        params = _params(state=state)
        if labels:
            params["label"] = list(labels)
        return self._typed("MachineList", self._get("/machines", params))

    def machine(self, name: str) -> Any:
        return self._typed("MachineDetail", self._get(f"/machines/{name}"))

    def machine_wait(self, name: str) -> Any:
        """A machine's wait-time matrix (``GET /machines/{machine}/wait``)."""
        return self._get(f"/machines/{name}/wait")

    def shares(self) -> Any:
        """Per user and group: dominant share, weight, running and pending (``GET /shares``)."""
        return self._get("/shares")

    def cell(self) -> Any:
        return self._typed("CellSummary", self._get("/cell"))

    # ---- the event history ---------------------------------------------------------------------

    def events(self, job: str | None = None, user: str | None = None, machine: str | None = None,
               type: str | Iterable[str] | None = None, since: str | float | None = None,
               cursor: int | None = None, limit: int | None = None) -> Any:
        """A page of the cell's events, oldest first -> ``EventPage``; pass its ``next`` as ``cursor``
        for the following page. ``since``: an RFC 3339 time (or seconds since the epoch)."""
        params = _params(job=job, user=user, machine=machine, type=_types(type), since=since, cursor=cursor,
                         limit=limit)
        return self._typed("EventPage", self._get("/events", params))

    def watch(self, job: str | None = None, user: str | None = None, machine: str | None = None,
              type: str | Iterable[str] | None = None, since: str | float | None = None,
              cursor: int | None = None, idle_timeout_s: float | None = None) -> Iterator[Any]:
        """Each new event as it happens (``EventRecord``), for as long as the caller iterates; with
        ``since`` or ``cursor`` the history from there first. A dropped stream is opened again from
        the last event seen (``retries`` times in a row). ``idle_timeout_s``: end after that long
        without an event or a keep-alive (None: never)."""
        params = _params(job=job, user=user, machine=machine, type=_types(type), since=since, cursor=cursor)
        params["watch"] = "true"
        failures = 0
        while True:
            try:
                for line in self.http.lines("/events", params, read_timeout_s=idle_timeout_s):
                    event = json.loads(line)
                    if "seq" not in event:  # a keep-alive
                        continue
                    failures = 0
                    params.pop("since", None)  # resume after the last event seen
                    params["cursor"] = event["seq"]
                    yield self._typed("EventRecord", event)
                return
            except ApiError as e:
                failures += 1
                if e.status or failures > self.retries:
                    raise
                time.sleep(0.2 * failures)

    # ---- plumbing ------------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.http.call("GET", path, params=params, retries=self.retries)

    def _typed(self, model: str, data: Any) -> Any:
        if not self.typed:
            return data
        from corral.master import responses  # pydantic: only for typed results

        return getattr(responses, model).model_validate(data)


def _params(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


def _types(given: str | Iterable[str] | None) -> str | None:
    return given if given is None or isinstance(given, str) else ",".join(given)


def _task_word(task: dict[str, Any]) -> str:
    return str(task.get("state") or "")


def new_lines(seen: list[str], lines: list[str]) -> list[str]:
    """The lines of ``lines`` (a later window of a log) after those already in ``seen`` (an earlier
    window): the longest end of ``seen`` that ``lines`` starts with is what both show."""
    for k in range(min(len(seen), len(lines)), 0, -1):
        if seen[len(seen) - k:] == lines[:k]:
            return lines[k:]
    return lines


def job_ref(spec: dict[str, Any]) -> str:
    """``NAME`` or ``NAME.USER`` of a spec; ApiError (bad input) without a name."""
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError("name: required field is missing", 2, kind="invalid")
    owner = spec.get("user", spec.get("owner"))
    return f"{name}.{owner}" if isinstance(owner, str) and owner else name


def load_spec(path: str | Path) -> dict[str, Any]:
    """A job spec file (YAML or JSON) as a mapping; ApiError (bad input) naming the line and column
    of a YAML error, or what is wrong with the file."""
    from corral.client.specfile import read_spec

    return read_spec(Path(path))
