"""The cell's event history: the newest logged events, kept in memory and queried by the API.

Every event the master logs (corral.master.events, as its dict) is added in
log order with what it is about: its job, the job's user, its task and its
machine. A query filters by any of them and by type and time, and pages with
a cursor: the ``seq`` of the last event a page held (events are in ``seq``
order, so the next page is the events after it). A restarted master fills
the history again from the end of its log (:meth:`EventHistory.fill`): what
the log still holds, that is the events after the checkpoint compaction kept.

The views (:func:`event_view`) carry times in RFC 3339 (UTC, milliseconds).
Not thread-safe on its own: the master adds and reads under its lock.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timezone
from typing import Any, Iterable, NamedTuple

# Fields of an event dict that are the envelope or too big to repeat in a listing (a job's spec
# is in GET /jobs/{job}); the rest goes into a view's ``detail``.
_ENVELOPE = frozenset({"v", "seq", "type", "cmd", "t", "spec", "job", "task", "machine"})


class About(NamedTuple):
    job: str | None
    user: str | None
    task: str | None
    machine: str | None


def about(event: dict[str, Any]) -> About:
    """What an event dict is about. A task's name is ``INDEX.JOB.USER.CELL``; a job id ``JOB.USER``."""
    task = event.get("task")
    job = event.get("job")
    if job is None and isinstance(task, str):
        parts = task.split(".")
        job = f"{parts[1]}.{parts[2]}" if len(parts) >= 4 else None
    machine = event.get("machine")
    if isinstance(machine, dict):  # machine_registered carries the machine's whole record
        machine = machine.get("name")
    user = job.rsplit(".", 1)[1] if isinstance(job, str) and "." in job else None
    return About(job, user, task if isinstance(task, str) else None, machine if isinstance(machine, str) else None)


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (``2026-12-02T01:00:00Z``, an offset, or none:
    UTC), or of a plain number of seconds; ValueError otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def event_view(event: dict[str, Any], what: About) -> dict[str, Any]:
    """An event as the API shows it (an ``EventRecord``)."""
    return {"seq": event["seq"], "type": event["type"], "time": rfc3339(event.get("t", 0.0)),
            "cmd": event.get("cmd", ""), "job": what.job, "user": what.user, "task": what.task,
            "machine": what.machine, "detail": {k: v for k, v in event.items() if k not in _ENVELOPE}}


class EventHistory:
    def __init__(self, keep: int = 100_000):
        self.keep = keep
        self._seqs: list[int] = []
        self._events: list[tuple[dict[str, Any], About]] = []

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            if self._seqs and event["seq"] <= self._seqs[-1]:
                continue  # already here (an append retried after a failure)
            self._seqs.append(event["seq"])
            self._events.append((event, about(event)))
        if len(self._seqs) > 2 * self.keep:  # trim now and then, not at every event
            del self._seqs[:-self.keep]
            del self._events[:-self.keep]

    def fill(self, store: Any, last_seq: int) -> None:
        """The newest ``keep`` events of ``store``'s log, up to ``last_seq``; a store that compacts
        (corral.store.base) has deleted those its checkpoint covers: what is left of them."""
        from corral.store.base import StoreCompacted

        try:
            events = store.read_since(max(0, last_seq - self.keep))
        except StoreCompacted as e:
            events = store.read_since(e.through)
        self.add(e for e in events if e["seq"] <= last_seq)

    @property
    def last_seq(self) -> int:
        return self._seqs[-1] if self._seqs else 0

    @property
    def first_seq(self) -> int:
        return self._seqs[0] if self._seqs else 0

    def query(self, job: str | None = None, user: str | None = None, machine: str | None = None,
              types: frozenset[str] | None = None, since: float | None = None, cursor: int = 0,
              limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` views of the events after ``cursor`` matching every filter given, oldest
        first, and the cursor for the next page (the seq of the last event looked at)."""
        start = bisect_right(self._seqs, cursor)
        out: list[dict[str, Any]] = []
        last = cursor
        for i in range(start, len(self._events)):
            event, what = self._events[i]
            last = event["seq"]
            if ((job is None or what.job == job) and (user is None or what.user == user)
                    and (machine is None or what.machine == machine)
                    and (types is None or event["type"] in types)
                    and (since is None or event.get("t", 0.0) >= since)):
                out.append(event_view(event, what))
                if len(out) >= limit:
                    break
        return out, last
