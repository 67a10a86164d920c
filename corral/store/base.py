"""The store interface: a write-ahead log of events plus checkpoints.

Four operations, small enough for SQLite, memory and etcd:

* ``append(events)`` — add events (dicts that carry their own ``seq``, strictly
  increasing) to the log. Returns a :class:`concurrent.futures.Future` that is
  resolved once the events are durable; callers acknowledge nothing before it
  resolves. Events appended earlier are durable no later than events appended
  after them (the log is a sequence), and the events of one ``append`` become
  durable together or not at all.
* ``read_since(seq)`` — the durable events with ``seq`` greater than ``seq``,
  in order.
* ``write_checkpoint(seq, state)`` — a snapshot of the state after event
  ``seq``; durable no earlier than the events up to ``seq``.
* ``latest_checkpoint()`` — ``(seq, state)`` of the newest checkpoint, or None.

Compaction: a store that compacts deletes, together with writing a checkpoint,
the events the checkpoint makes unnecessary (those up to its ``seq``), so the
log holds at most one checkpoint's worth of events. ``read_since(seq)`` for a
``seq`` before what was compacted raises :class:`StoreCompacted`: the reader
must start again from ``latest_checkpoint()``; a gap is never returned.

Events and checkpoint states are JSON-serialisable dicts.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Iterator, Protocol

Event = dict[str, Any]


class StoreError(RuntimeError):
    """The store cannot do what was asked (closed, corrupt, not writable)."""


class StoreCompacted(StoreError):
    """The events asked for were deleted by compaction: start from the latest checkpoint."""

    def __init__(self, seq: int, through: int):
        super().__init__(f"events up to {through} were compacted (asked for those after {seq}); "
                         "start from the latest checkpoint")
        self.seq, self.through = seq, through


class Store(Protocol):
    kind: str

    def append(self, events: list[Event]) -> Future: ...

    def read_since(self, seq: int) -> Iterator[Event]: ...

    def write_checkpoint(self, seq: int, state: dict[str, Any]) -> Future: ...

    def latest_checkpoint(self) -> tuple[int, dict[str, Any]] | None: ...

    def close(self) -> None: ...


def done(value: Any = None) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future
