"""Job and task lifecycles as transition tables (Borg's figure 2).

A task is pending, running or dead; so is a job. ``TASK_TRANSITIONS`` maps
``(from, via)`` to the state a task goes to; ``None`` as the start is a task
coming into being. Anything not in the table is impossible and raises
:class:`TransitionError` with the object's story (its recent transitions).

=========  ==========  =========  ==============================================
from       via         to         when
=========  ==========  =========  ==============================================
(new)      submit      pending    the job was accepted
pending    schedule    running    a plan placing it was committed
pending    update      pending    its job's spec changed
pending    upgrade     pending    opportunistic → regular (its user's quota freed)
pending    kill        dead       the user killed the job
pending    reject      dead       the job it waits for ended without finishing
running    evict       pending    preempted, or evicted by its agent
running    lost        pending    its machine stopped answering
running    failover    pending    its agent gave up on it; it is tried on another machine
running    update      running    priority change: no restart
running    upgrade     running    opportunistic → regular in place: no restart
running    update      pending    (via ``restart``) resource change: rescheduled
running    finish      dead       the agent reported a clean exit
running    fail        dead       the agent gave up restarting it
running    kill        dead       the user killed the job
=========  ==========  =========  ==============================================

A job's state follows its tasks: running if any task runs, pending if any
waits; when none lives the job has ended, and the task transition that ended
it says how: ``finish`` → succeeded, ``fail`` → failed, ``kill`` or
``reject`` → killed (``corral.model.job.job_end_state``). Its transition
carries that ``via``. In ``JOB_TRANSITIONS`` the three end states are one
column, ``ended``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.model.job import JobState, TaskState

P, R, D = TaskState.PENDING, TaskState.RUNNING, TaskState.DEAD

TASK_TRANSITIONS: dict[tuple[TaskState | None, str], TaskState] = {
    (None, "submit"): P,
    (P, "schedule"): R,
    (P, "update"): P,
    (P, "upgrade"): P,
    (P, "kill"): D,
    (P, "reject"): D,
    (R, "evict"): P,
    (R, "lost"): P,
    (R, "failover"): P,
    (R, "update"): R,
    (R, "upgrade"): R,
    (R, "restart"): P,
    (R, "finish"): D,
    (R, "fail"): D,
    (R, "kill"): D,
}

JP, JR, JD = "pending", "running", "ended"

# A job's state is derived from its tasks after each event; the change must be one of these,
# caused by one of the listed task transitions.
JOB_TRANSITIONS: dict[tuple[str | None, str], frozenset[str]] = {
    (None, JP): frozenset({"submit"}),
    (JP, JP): frozenset({"update"}),
    (JP, JR): frozenset({"schedule"}),
    (JP, JD): frozenset({"kill", "reject", "update", "fail"}),  # update: scaled down to tasks that ended;
    # fail: a task failed for good while the others were pending (they are killed with the job)
    (JR, JR): frozenset({"update"}),
    (JR, JP): frozenset({"evict", "lost", "failover", "restart", "finish", "fail", "update"}),
    (JR, JD): frozenset({"finish", "fail", "kill", "update"}),
}

class TransitionError(RuntimeError):
    """An impossible transition; the message tells the object's story."""


@dataclass(frozen=True, slots=True)
class Transition:
    seq: int
    cmd: str
    via: str
    old: str | None
    new: str
    t: float = 0.0
    note: str = ""
    machine: str | None = None  # a task's: where it was placed (schedule) or ran until this transition

    def to_dict(self) -> dict[str, Any]:
        out = {"seq": self.seq, "cmd": self.cmd, "t": self.t, "via": self.via, "from": self.old, "to": self.new,
               "note": self.note}
        if self.machine is not None:
            out["machine"] = self.machine
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Transition":
        machine = d.get("machine")
        note = d.get("note", "")
        if machine is None and d["via"] == "schedule" and note.startswith("on "):
            machine = note[3:]  # written before transitions carried their machine
        return cls(d["seq"], d["cmd"], d["via"], d["from"], d["to"], d.get("t", 0.0), note, machine)


def story(name: str, state: Any, history: list[Transition], last: int = 8) -> str:
    lines = [f"{name} is {getattr(state, 'value', state)}; its last transitions:"]
    for t in history[-last:]:
        lines.append(f"  #{t.seq} {t.old or '(new)'} --{t.via}--> {t.new} (command {t.cmd}){' ' + t.note if t.note else ''}")
    if not history:
        lines.append("  (none)")
    return "\n".join(lines)


def next_task_state(name: str, state: TaskState | None, via: str, history: list[Transition]) -> TaskState:
    to = TASK_TRANSITIONS.get((state, via))
    if to is None:
        raise TransitionError(f"task {name}: no transition {getattr(state, 'value', state)} --{via}-->\n"
                              + story(f"task {name}", state, history))
    return to


def _column(state: JobState | None) -> str | None:
    return None if state is None else JD if state.ended else state.value


def check_job_transition(name: str, old: JobState | None, new: JobState, via: str,
                         history: list[Transition]) -> None:
    if via not in JOB_TRANSITIONS.get((_column(old), _column(new)), ()):
        raise TransitionError(f"job {name}: no transition {getattr(old, 'value', old)} --{via}--> {new.value}\n"
                              + story(f"job {name}", old, history))
