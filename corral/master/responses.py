"""The master API's response bodies as pydantic models: what every route answers, in /openapi.json.

Views (corral.master.views) build these; the routes (corral.master.api)
declare them. Command replies come from the master core as dicts and are
validated into their model with ``extra="allow"``, so a key the core adds
reaches clients before this module names it. Errors are :class:`ErrorBody`
with the statuses of :data:`ERRORS`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from corral.model.validation import error_body


class _Open(BaseModel):
    """A reply built elsewhere (the core): named fields documented, further fields passed on."""

    model_config = ConfigDict(extra="allow")


# ---- errors ---------------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="the request field at fault: a dotted path (resources.memory), or "
                                   "authorization, body, path, master")
    message: str = Field(description="what was expected, and what came")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the API."""

    error: str = Field(description="the kind: invalid, unauthorized, forbidden, not_found, conflict, "
                                   "unavailable, internal")
    message: str = Field(description="every field error in one line: 'field: message; ...'")
    errors: list[FieldError]


ERRORS: dict[int, str] = {
    400: "bad input: a field that does not validate, malformed JSON, an unknown filter word",
    401: "no bearer token, or an unknown one",
    403: "the token's user may not do this",
    404: "no such job, task, machine or path",
    409: "a live job of that name exists",
    413: "the body is too large",
    422: "well-formed but refused: over quota, an 'after' job that cannot finish",
    503: "the master cannot take commands now (not the leader, or its store failed)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status documented with :class:`ErrorBody`."""
    return {s: {"model": ErrorBody, "description": ERRORS.get(s, "error")} for s in statuses}


def error_response(status: int, kind: str, errors: list[tuple[str, str]],
                   headers: dict[str, str] | None = None) -> Any:
    """An :class:`ErrorBody` answer, a JSONResponse (built by hand: the hot path and the catch-all use it)."""
    from fastapi.responses import JSONResponse  # the models load without the web framework (corral.client)

    return JSONResponse(error_body(kind, errors), status_code=status, headers=headers)


# ---- jobs -----------------------------------------------------------------------------------------


class JobReply(_Open):
    """The answer to a submit, an update or a kill: the job as it is now."""

    job: str = Field(description="the job id <job>.<user>")
    name: str
    user: str
    state: str
    version: int
    tasks: int
    duplicate: bool | None = Field(None, description="true when X-Request-Id named an earlier submission")


class UpdateReply(JobReply):
    changed: list[str] = Field(default_factory=list, description="the spec fields that changed")
    restart: bool | None = Field(None, description="true when the change needs a rolling restart")


class DryPlacement(BaseModel):
    task: str
    machine: str
    score: float = Field(description="the scheduler's score of the machine for the task")
    gpus: list[int] = Field(default_factory=list)
    ports: list[int] = Field(default_factory=list)


class DryPreemption(BaseModel):
    job: str
    task: str
    machine: str
    priority: int
    by: str = Field(description="the task of this job that would take its room")
    reason: str


class DryPending(BaseModel):
    task: str
    reason: str


class DryRunReply(BaseModel):
    """``POST /jobs?dry_run=true``: what submitting would do now; nothing was stored."""

    dry_run: bool = True
    job: str
    admitted: bool = Field(description="true: the spec and the quota admit it (a refusal is the submit's error)")
    placed: list[DryPlacement]
    preempted: list[DryPreemption]
    pending: list[DryPending] = Field(description="the first 100 tasks that would stay pending, with why")
    pending_count: int = 0
    placed_count: int = Field(0, description="all placements (``placed`` lists the first 1,000)")


class DryRunUpdateReply(BaseModel):
    """``PUT /jobs/{job}?dry_run=true``: what the update would do now; nothing was stored."""

    dry_run: bool = True
    job: str
    changed: list[str] = Field(default_factory=list)
    restart: bool | None = None
    waves: list[list[str]] = Field(default_factory=list,
                                   description="the running tasks a rolling update would restart, wave by wave")
    restarts: int = 0
    placed: list[DryPlacement] = Field(default_factory=list)
    preempted: list[DryPreemption] = Field(default_factory=list)
    pending: list[DryPending] = Field(default_factory=list)


class RollbackReply(JobReply):
    rollback: str = Field(description="why the job rolls back")


class LastTransition(BaseModel):
    via: str
    note: str


class ExitInfo(BaseModel):
    """How a task's process last ended, as its agent reported it."""

    code: int | None = Field(description="the exit code; null when the process could not start")
    error: str = Field(description="the agent's last error (an OS error, a failed health check), or ''")


class CopyView(BaseModel):
    """A straggler's speculative copy (corral.master.speculation): the first copy to finish wins."""

    number: int = Field(description="its copy number (the task itself is copy 0)")
    machine: str
    started_at: float = Field(description="when it was placed (seconds since the epoch)")
    reason: str = Field(description="why: 'speculative copy of 3.sort.alice: running 52 s, siblings' p90 5.1 s × 1.5'")


class TaskView(BaseModel):
    """A task: where it runs and, in words (corral.master.status), what it is doing."""

    name: str = Field(description="INDEX.JOB.USER.CELL")
    job: str
    user: str
    index: int
    state: str = Field(description="pending, starting, running, restarting, succeeded, failed or killed")
    detail: str = Field(description="what the task is doing beyond its state, or ''")
    restarts: int = Field(description="how often its agent restarted it in this placement")
    last_exit: ExitInfo | None = Field(description="how its process last ended; null if it has not")
    machine: str | None
    address: str | None = Field(description="the address of its machine's agent")
    ports: list[int] = Field(description="its ports while it is placed")
    gpus: list[int]
    generation: int
    version: int
    reason: str | None = Field(None, description="why it waits (pending) or the note of its last transition")
    health: str | None = Field(None, description="healthy, unhealthy or 'not yet healthy' for a running task "
                                                 "whose spec has a health_check; null otherwise")
    oom_kills: int = Field(0, description="how often the kernel's OOM killer ended it (its agents' counts)")
    reclaimed: bool = Field(False, description="placed in room reclaimed from other tasks' reservations: "
                            "non-production work that would not have fit against limits; throttled (CPU) or "
                            "evicted (memory) when that room shrinks")
    speculative_copy: CopyView | None = Field(None, description="its second copy while one runs elsewhere")
    opportunistic: bool = Field(False, description="runs beyond its user's quota (the spec's opportunistic): "
                                "placed in idle room, preempted before any regular task, charged nothing; "
                                "upgraded to regular in place when the quota frees")


class TransitionView(BaseModel):
    """One state change of a job or task (corral.master.lifecycle.Transition)."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    seq: int
    cmd: str
    t: float = Field(description="when, in seconds since the epoch")
    time: str = Field(description="when, RFC 3339 (UTC)")
    via: str
    from_: str | None = Field(alias="from", description="the state before; null for a new object")
    to: str
    note: str


class TaskDetail(TaskView):
    history: list[TransitionView]


class TaskList(BaseModel):
    tasks: list[TaskView]
    count: int = Field(description="every matching task, also those past the limit")


class JobTasks(BaseModel):
    tasks: list[TaskView]


class JobSummary(BaseModel):
    job: str
    name: str
    user: str
    state: str = Field(description="pending, running, succeeded, failed or killed")
    reason: str | None = Field(description="how an ended job ended; null while it lives")
    priority: int
    tasks: int
    task_states: dict[str, int] = Field(description="tasks per state word, and 'dead': every ended task")
    version: int
    submitted_at: float
    after: str | None
    last: LastTransition | None = None
    kind: str = Field("job", description="job, or allocset: an alloc set, whose tasks are its allocs")
    alloc: str | None = Field(None, description="the alloc set the job's tasks run in, if any")
    opportunistic: int = Field(0, description="how many of its live tasks are opportunistic (beyond quota)")


class RolloutView(BaseModel):
    """A job's rolling update (corral.master.rollout)."""

    version: int = Field(description="the version it rolls to")
    tasks: int = Field(description="the job's live tasks")
    updated: int = Field(description="tasks on that version and available (healthy, if the spec checks health)")
    state: str = Field(description="rolling, paused, rolling back or rolled back")
    reason: str = Field(description="why it is paused or rolling back, or how it rolls")
    failed: list[int] = Field(description="indexes of the tasks of that version that failed since the update")


class JobDetail(JobSummary):
    spec: dict[str, Any] = Field(description="the job's spec in canonical form (a JobSpec)")
    task_list: list[TaskView]
    rollout: RolloutView | None = Field(None, description="its rolling update while one is under way; null otherwise")


class JobList(BaseModel):
    jobs: list[JobSummary]
    count: int = Field(description="every matching job, also those past the limit")


class EventView(TransitionView):
    object: str = Field(description="the job id or the task name")
    kind: str = Field(description="job or task")


class JobEvents(BaseModel):
    job: str
    events: list[EventView]


class Explanation(_Open):
    """The scheduler's record of why a task was not placed (corral.sched.explain)."""

    machines: int
    evaluated: int
    filtered: dict[str, int]
    exhausted: dict[str, int]
    preemption: str
    gang: str | None = Field(None, description="for a gang's task: why the gang cannot be placed together")
    held: str | None = Field(None, description="machines a waiting gang holds that this task may not take")
    summary: str


class WhyView(BaseModel):
    task: str
    state: str = Field(description="where it is in its lifecycle: pending, running (placed) or dead")
    word: str = Field(description="what it is doing, as TaskView.state says it")
    detail: str
    summary: str = Field(description="one sentence on why it waits, or what it does")
    explanation: Explanation | None
    reclaimed: bool = Field(False, description="it runs in reclaimed room (see TaskView.reclaimed)")
    opportunistic: bool = Field(False, description="it is an opportunistic task (see TaskView.opportunistic)")


# ---- machines and the cell ------------------------------------------------------------------------


class Capacity(BaseModel):
    cpu: int = Field(description="millicores")
    memory: int = Field(description="bytes")
    disk: int = Field(description="bytes")
    gpu: int


class Free(BaseModel):
    cpu: int
    memory: int
    disk: int
    gpu_milli: int


class MachineView(BaseModel):
    name: str
    capacity: Capacity
    gpu_model: str
    attributes: dict[str, str]
    address: str
    isolation: str
    state: str = Field(description="up or lost")
    registered_seq: int
    free: Free | None = Field(description="what is not reserved; null while it is not in the cell view")
    tasks: int
    limit: dict[str, int] | None = Field(None, description="cpu (millicores) and memory (bytes) its running tasks "
                                                           "asked for")
    reservation: dict[str, int] | None = Field(None, description="the master's reservations of them (reclamation): "
                                                                 "from the limit towards usage peak + margin")
    usage: dict[str, int] | None = Field(None, description="what they used, as their agent last reported")


class MachineDetail(MachineView):
    task_list: list[str] = Field(description="the tasks the master wants on it")


class MachineList(BaseModel):
    machines: list[MachineView]
    count: int


class NotifyReply(_Open):
    """The answer to an agent's notification: applied, or ignored and why (nothing changed)."""

    machine: str
    applied: bool
    ignored: str | None = Field(None, description="why nothing was applied (a stale or out-of-cell report)")
    tasks: int | None = Field(None, description="statuses applied")


class RegisterReply(_Open):
    machine: str
    poll_interval_s: float


class CellSummary(BaseModel):
    cell: str
    seq: int = Field(description="the sequence number of the last event")
    machines: int
    jobs: int
    tasks: dict[str, int] = Field(description="tasks per state word, and 'dead': every ended task")
    store: str
    broken: str = Field(description="why the master stopped taking commands, or ''")


# ---- the event history ----------------------------------------------------------------------------


class EventRecord(BaseModel):
    """One logged event of the cell (corral.master.events), as GET /api/v1/events lists it."""

    seq: int = Field(description="its place in the log; a page's cursor")
    type: str = Field(description="machine_registered, machine_lost, job_submitted, job_updated, job_killed, "
                                  "job_failed, task_scheduled, task_ended, task_upgraded, task_queued, task_dequeued, task_started, allocset_submitted or allocset_killed")
    time: str = Field(description="when it happened, RFC 3339 (UTC)")
    cmd: str = Field(description="the id of the command that caused it")
    job: str | None
    user: str | None
    task: str | None
    machine: str | None
    detail: dict[str, Any] = Field(description="its other fields (via, note, generation, ...)")


class EventPage(BaseModel):
    events: list[EventRecord]
    next: int = Field(description="the cursor for the next page: pass it as ?cursor=")
    oldest: int = Field(description="the seq of the oldest event the history still holds")
    last: int = Field(description="the seq of the newest event")


class MasterRole(BaseModel):
    """One master among the cell's masters (``corral masters``)."""

    url: str = Field(description="the URL this master is reached at")
    role: str = Field(description="leader, follower, promoting (taking over) or deposed")
    pid: int = Field(description="the master's process id")
    applied: int = Field(description="the seq of the last event of the log it has applied")
    leader: str | None = Field(None, description="the leader's URL, as far as this master knows")


# ---- alloc sets (allocs_api.py) ----------------------------------------------------------------


class AllocResources(BaseModel):
    cpu: int = Field(description="millicores")
    memory: int = Field(description="bytes")
    disk: int = Field(description="bytes")


class AllocView(BaseModel):
    """One alloc: where it is, what its tasks use of it, which tasks run in it."""

    alloc: str = Field(description="<set>/<index>, as the CLI names it")
    id: str = Field(description="its id: INDEX.SET.USER.CELL (the agent's alloc-<id> cgroup)")
    index: int
    state: str = Field(description="pending (not placed), running (placed: it holds its resources) or dead")
    machine: str | None
    used: AllocResources = Field(description="what the tasks in it take of it (their limits)")
    tasks: list[str] = Field(description="the tasks placed in it")
    reason: str = Field(description="why it waits for a machine (pending), else ''")


class AllocSetView(BaseModel):
    """An alloc set: ``count`` allocs of ``resources`` each, and the live jobs that run in it."""

    allocset: str = Field(description="its id <name>.<user>")
    name: str
    user: str
    state: str
    priority: int
    count: int
    resources: AllocResources = Field(description="what each alloc holds")
    jobs: list[str] = Field(description="the live jobs whose tasks run in its allocs")
    allocs: list[AllocView]


class AllocSetList(BaseModel):
    allocsets: list[AllocSetView]
    count: int
