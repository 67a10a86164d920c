"""An in-memory store for tests and the simulator: everything is durable at once."""

from __future__ import annotations

import copy
import json
from concurrent.futures import Future
from typing import Any, Iterator

from corral.store.base import Event, StoreError, done


class MemoryStore:
    kind = "memory"

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.checkpoints: list[tuple[int, dict[str, Any]]] = []
        self.closed = False

    def append(self, events: list[Event]) -> Future:
        if self.closed:
            raise StoreError("the store is closed")
        last = self.events[-1]["seq"] if self.events else 0
        for event in events:
            if event["seq"] <= last:
                raise StoreError(f"event seq {event['seq']} is not after {last}")
            last = event["seq"]
        # A JSON round trip: what is read back is what a durable store would give.
        self.events.extend(json.loads(json.dumps(events)))
        return done(last)

    def read_since(self, seq: int) -> Iterator[Event]:
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
        return done(seq)

    def latest_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        if not self.checkpoints:
            return None
        seq, state = self.checkpoints[-1]
        return seq, copy.deepcopy(state)

    def close(self) -> None:
        self.closed = True
