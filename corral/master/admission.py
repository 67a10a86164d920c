"""Admission: what the master accepts (job specs, updates, machines) and what it refuses.

Every function here reads the state and raises :class:`AdmissionError` (with
the HTTP status and ``(field, message)`` pairs) before anything changes, or
returns what the command may do. Nothing here emits events: the rooms that
apply a command call admission first, so a refused command leaves no trace.

* a spec must validate (corral.model.spec); a quantity beyond what corral
  holds is refused (``quantity_bounds``);
* a live job of the same name is a conflict (409); an ended one may be
  submitted again;
* ``after: X`` needs X to exist and not to have ended other than by
  succeeding;
* quota: the limits of the live regular tasks of the user's live jobs in the
  band plus this job's (Borg §2.5; corral.master.quota); with ``opportunistic``
  the tasks beyond it are admitted as opportunistic (corral.master.opportunistic);
* a repeated request id of the same user answers the first job;
* an alloc set (``kind: allocset``) is admitted like a job, charged its
  allocs; a job with ``alloc: SET`` needs the user's live set, tasks that fit
  one alloc (and, by index, at most one per alloc), and is charged nothing
  (its set is): ``check_alloc_job``;
* a machine's name and capacity must be usable (integers are corral's units,
  strings quantities people type).

Quotas live in :mod:`corral.master.quota`, tokens in :mod:`corral.master.auth`, the error in
:mod:`corral.master.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.master.commands import RegisterMachine, Submit, Update
from corral.master.errors import AdmissionError
from corral.master.opportunistic import opportunistic_count
from corral.master.quota import Quotas, quantity_bounds
from corral.master.records import JobRecord, charge, job_id, spec_to_dict
from corral.model.allocset import is_allocset
from corral.model.job import JobState, TaskState
from corral.model.priority import band_of
from corral.model.quantity import parse_capacity_mapping
from corral.model.resources import format_bytes, format_cpu
from corral.model.spec import JobSpec, SpecError, parse_job_spec

# Spec fields a running task can take without a restart (an alloc set's count is its tasks).
IN_PLACE_FIELDS = {"priority", "tasks", "count", "update", "speculation", "opportunistic", "expected_runtime"}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def parse_spec(spec: Any) -> JobSpec:
    """A validated JobSpec from a decoded spec (or the JobSpec itself)."""
    if isinstance(spec, JobSpec):
        return spec
    try:
        parsed = parse_job_spec(spec)
    except SpecError as e:
        raise AdmissionError(400, e.errors) from None
    except (OverflowError, ValueError) as e:  # a number no quantity parser can hold
        raise AdmissionError(400, [("spec", f"a quantity is out of range ({e})")]) from None
    r = parsed.resources
    errors = quantity_bounds({"cpu": r.cpu, "memory": r.memory, "disk": r.disk}, "resources")
    if errors:
        raise AdmissionError(400, errors)
    return parsed


def find_job(state: Any, jid: str) -> JobRecord:
    job = state.jobs.get(jid)
    if job is None:
        raise AdmissionError(404, [("job", f"no job {jid}")], "not_found")
    return job


@dataclass(frozen=True)
class Admitted:
    """A submission the master accepts: its spec, and the dict the log keeps of it."""

    job: str
    spec: JobSpec
    spec_dict: dict[str, Any]
    opportunistic: int = 0  # how many of its tasks (the last ones) run beyond the quota


def admit_submit(state: Any, quotas: Quotas, cmd: Submit) -> Admitted | JobRecord:
    """An :class:`Admitted` submission, or the job an earlier submission with the same request id
    made (answer it again; nothing to do)."""
    spec = parse_spec(cmd.spec)
    if cmd.request_id:
        known = state.requests.get(f"{spec.user}/{cmd.request_id}")
        if known is not None:
            return state.jobs[known]
    jid = job_id(spec.name, spec.user)
    old = state.jobs.get(jid)
    if old is not None and not old.state.ended:
        raise AdmissionError(409, [("name", f"job {spec.name} of user {spec.user} already exists and is "
                                            f"{old.state.value}; update it or kill it first")], "conflict")
    if spec.after is not None:
        _no_cycle(state, spec)
        dep = state.jobs.get(job_id(spec.after, spec.user))
        if dep is None:
            raise AdmissionError(422, [("after", f"expected the name of a job of user {spec.user}; "
                                                 f"there is no job {spec.after}")])
        if dep.state.ended and dep.state is not JobState.SUCCEEDED:
            raise AdmissionError(422, [("after", f"job {spec.after} {dep.state.value}, it will never succeed")])
    if spec.alloc:
        check_alloc_job(state, spec)
    if spec.opportunistic_cap:
        over = opportunistic_count(quotas, spec, state.usage_of(spec.user, band_of(spec.priority)))
    else:
        over = 0
        quotas.check(spec.user, spec.priority, state.usage_of(spec.user, band_of(spec.priority)), charge(spec))
    return Admitted(jid, spec, spec_to_dict(spec), over)


_PLACED_BY_THE_SET = ("constraints", "soft_constraints", "max_per_domain", "spread")


def check_alloc_job(state: Any, spec: JobSpec) -> None:
    """A job that runs in alloc set ``spec.alloc``: the set must be the user's and live, hold its
    tasks (``index``: one alloc per task) and each of its allocs a task; it asks for no GPUs or ports
    and takes its placement from the set."""
    allocset = state.jobs.get(job_id(spec.alloc, spec.user))
    if allocset is None or not allocset.is_allocset:
        raise AdmissionError(422, [("alloc", f"expected the name of an alloc set of user {spec.user}; "
                                             f"there is no alloc set {spec.alloc}")])
    if allocset.state.ended:
        raise AdmissionError(422, [("alloc", f"alloc set {spec.alloc} was {allocset.state.value}")])
    errors = []
    if spec.alloc_placement == "index" and spec.tasks > allocset.spec.count:
        errors.append(("tasks", f"alloc set {spec.alloc} has {allocset.spec.count} allocs and task i runs in "
                                f"alloc i: expected at most {allocset.spec.count} tasks, or alloc_placement: any"))
    need, holds = spec.resources, allocset.spec.resources
    for name, show in (("cpu", format_cpu), ("memory", format_bytes), ("disk", format_bytes)):
        if getattr(need, name) > getattr(holds, name):
            errors.append((f"resources.{name}", f"a task asks {show(getattr(need, name))}, an alloc of "
                                                f"{spec.alloc} holds {show(getattr(holds, name))}"))
    if need.gpu:
        errors.append(("resources.gpu", "a task in an alloc cannot ask for GPUs yet"))
    if need.ports:
        errors.append(("resources.ports", "a task in an alloc cannot ask for ports yet"))
    for name in _PLACED_BY_THE_SET:
        if getattr(spec, name):
            errors.append((name, f"a task in an alloc runs where its alloc is: give {name} to alloc set "
                                 f"{spec.alloc}"))
    if errors:
        raise AdmissionError(422, errors)


def _no_cycle(state: Any, spec: JobSpec) -> None:
    """Refuse an ``after`` that leads back to the job itself through live jobs (it would wait for ever)."""
    chain = [spec.name]
    name = spec.after
    while name is not None:
        if name == spec.name:
            raise AdmissionError(422, [("after", f"job {spec.name} would wait for itself: "
                                                 f"{' -> '.join(chain + [name])}")])
        chain.append(name)
        dep = state.jobs.get(job_id(name, spec.user))
        if dep is None or dep.state.ended or len(chain) > len(state.jobs) + 1:
            return
        name = dep.spec.after


@dataclass(frozen=True)
class AdmittedUpdate:
    job: JobRecord
    spec: JobSpec
    spec_dict: dict[str, Any]
    changed: frozenset[str]  # spec fields that differ; empty: nothing to do
    restart: bool  # a change beyond IN_PLACE_FIELDS: the tasks are restarted (rolling)
    opportunistic: int = 0  # how many of the tasks it adds (the last ones) run beyond the quota


def admit_update(state: Any, quotas: Quotas, cmd: Update) -> AdmittedUpdate:
    spec = parse_spec(cmd.spec)
    if cmd.max_unavailable < 1:
        raise AdmissionError(400, [("max_unavailable", f"expected an integer >= 1, got {cmd.max_unavailable}")])
    job = find_job(state, job_id(spec.name, spec.user))
    if job.state.ended:
        raise AdmissionError(409, [("name", f"job {job.id} has {job.state.value}; submit it again instead")],
                             "conflict")
    new = spec_to_dict(spec)
    # (by type too: opportunistic true is not opportunistic 1)
    changed = frozenset(k for k in set(new) | set(job.spec_dict)
                        if new.get(k) != job.spec_dict.get(k) or type(new.get(k)) is not type(job.spec_dict.get(k)))
    if not changed:
        return AdmittedUpdate(job, spec, new, changed, False)
    if "after" in changed:
        raise AdmissionError(422, [("after", "cannot change the job a job waits for; submit a new job")])
    if is_allocset(spec) != job.is_allocset:
        raise AdmissionError(422, [("kind", f"{job.id} is {'an alloc set' if job.is_allocset else 'a job'}; "
                                            f"submit a new one of the other kind")])
    if "alloc" in changed:
        raise AdmissionError(422, [("alloc", "cannot move a job to another alloc set; submit a new job")])
    if job.is_allocset:
        _check_allocset_update(state, job, spec, changed)
    elif spec.alloc:
        check_alloc_job(state, spec)
    band = band_of(spec.priority)
    used = state.usage_of(spec.user, band)
    if band == job.band:
        used = used - charge(job.spec, state.charged.get(job.id, 0))
    # Quota counts the live regular tasks the job keeps and those it adds (corral.master.opportunistic).
    kept = [t for t in state.tasks_of(job.id) if t.state is not TaskState.DEAD and t.index < spec.tasks]
    already = sum(1 for t in kept if t.opportunistic)
    if already > spec.opportunistic_cap:
        raise AdmissionError(422, [("opportunistic", f"job {job.id} has {already} opportunistic tasks; expected "
                                                     f"at least {already}, or fewer tasks")])
    added = max(0, spec.tasks - job.spec.tasks)
    over = opportunistic_count(quotas, spec, used, len(kept) - already, added, already)
    return AdmittedUpdate(job, spec, new, changed, bool(changed - IN_PLACE_FIELDS), over)


def _check_allocset_update(state: Any, job: JobRecord, spec: Any, changed: frozenset[str]) -> None:
    """An alloc set changes its priority and count in place; fewer allocs only if those removed are empty."""
    other = sorted(changed - {"priority", "count"})
    if other:
        raise AdmissionError(422, [(other[0], "an alloc set changes only its priority and count in place; "
                                              "submit a new alloc set for other changes")])
    busy = [t for t in state.tasks_of(job.id) if t.index >= spec.count and state.alloc_members.get(t.name)]
    if busy:
        raise AdmissionError(422, [("count", f"alloc {job.name}/{busy[0].index} still holds tasks "
                                             f"({', '.join(sorted(state.alloc_members[busy[0].name]))})")])


def admit_machine(cmd: RegisterMachine) -> dict[str, Any]:
    """The machine record a registration asks for (the ``machine`` of a MachineRegistered event)."""
    errors = []
    if not cmd.name or not set(cmd.name) <= _NAME_CHARS or len(cmd.name) > 128:
        errors.append(("name", "expected 1-128 lowercase letters, digits, '.', '-' or '_'"))
    capacity, capacity_errors = parse_capacity_mapping(cmd.capacity)
    errors += capacity_errors
    if errors:
        raise AdmissionError(400, errors)
    return {"name": cmd.name, "capacity": capacity, "gpu_model": cmd.gpu_model,
            "attributes": dict(sorted((str(k), str(v)) for k, v in cmd.attributes.items())),
            "address": cmd.address, "isolation": cmd.isolation}
