"""An in-memory store for tests and the simulator: everything is durable at once."""

from __future__ import annotations

import copy
import json
from concurrent.futures import Future
from typing import Any, Iterator

from corral.store.base import Event, StoreCompacted, StoreError, done


class MemoryStore:
    """``compact``: delete the events a checkpoint covers (off by default: the simulator and the
    tests read whole logs back)."""

    kind = "memory"

    def __init__(self, compact: bool = False) -> None:
        self.events: list[Event] = []
        self.checkpoints: list[tuple[int, dict[str, Any]]] = []
        self.closed = False
        self.compact = compact
        self.compacted_through = 0
        self._last = 0

    def append(self, events: list[Event]) -> Future:
        if self.closed:
            raise StoreError("the store is closed")
        last = self._last
        for event in events:
            if event["seq"] <= last:
                raise StoreError(f"event seq {event['seq']} is not after {last}")
            last = event["seq"]
        # A JSON round trip: what is read back is what a durable store would give.
        self.events.extend(json.loads(json.dumps(events)))
        self._last = last
        return done(last)

    def read_since(self, seq: int) -> Iterator[Event]:
        if seq < self.compacted_through:
            raise StoreCompacted(seq, self.compacted_through)
        return self._read(seq)

    def _read(self, seq: int) -> Iterator[Event]:
        for event in self.events:
            if event["seq"] > seq:
                yield copy.deepcopy(event)

    def write_checkpoint(self, seq: int, state: dict[str, Any]) -> Future:
        try:
            self.checkpoints.append((seq, json.loads(json.dumps(state))))
        except (TypeError, ValueError) as e:
            future: Future = Future()
            future.set_exception(StoreError(f"checkpoint is not JSON: {e}"))
            return future
        if self.compact:
            self.checkpoints = self.checkpoints[-1:]
            self.events = [e for e in self.events if e["seq"] > seq]
            self.compacted_through = max(self.compacted_through, seq)
        return done(seq)

    def latest_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        if not self.checkpoints:
            return None
        seq, state = self.checkpoints[-1]
        return seq, copy.deepcopy(state)

    def close(self) -> None:
        self.closed = True
