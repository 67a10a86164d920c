"""The default store: one SQLite file in WAL mode, fully synced, with group commit.

A single writer thread owns the write connection. ``append`` queues the events
and returns a future; the writer takes everything queued, writes it in one
transaction, commits with ``synchronous=FULL`` (fsync of the WAL) and only
then resolves the futures of that group. Queue order is log order, so an
event is never durable before an event appended earlier; after a failed
append, later events fail unwritten until the missing ones are appended again
(``_after_hole``), so the log never has a hole. Readers use their
own connections (WAL lets them run beside the writer).
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Iterator

from corral.store.base import Event, StoreCompacted, StoreError
from corral.model.private import touch_private

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS compacted (id INTEGER PRIMARY KEY CHECK (id = 0), through INTEGER NOT NULL);
"""
_STOP = object()


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class SqliteStore:
    kind = "sqlite"

    def __init__(self, path: str | Path, max_group: int = 4096, keep_checkpoints: int = 1, compact: bool = True):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.path != ":memory:":
                # the log holds every job's spec, env values included; SQLite gives its -wal and
                # -shm files the mode of the database file
                touch_private(self.path)
            self._conn = _connect(self.path)
            self._conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open SQLite store {self.path}: {e}") from None
        self._read = _connect(self.path)
        self._read_lock = threading.Lock()
        self.max_group = max_group
        self.keep_checkpoints = keep_checkpoints
        # Compaction deletes the events up to the oldest checkpoint kept: every kept checkpoint
        # still rebuilds the state with the log after it.
        self.compact = compact
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self.groups = 0  # transactions committed (for the benchmark and tests)
        self._hole: int | None = None  # the first event of a failed append, until it is written
        self._hole_error = self._last_error = ""
        self._writer = threading.Thread(target=self._write_loop, name="corral-store-writer", daemon=True)
        self._writer.start()

    # ---- writing ---------------------------------------------------------------------------

    def append(self, events: list[Event]) -> Future:
        if self._closed:
            raise StoreError("the store is closed")
        future: Future = Future()
        rows = [(e["seq"], json.dumps(e, separators=(",", ":"))) for e in events]
        self._queue.put(("events", rows, future))
        return future

    def write_checkpoint(self, seq: int, state: dict[str, Any]) -> Future:
        if self._closed:
            raise StoreError("the store is closed")
        future: Future = Future()
        # Serialised by the writer thread, not the caller (who may hold the master's lock): the
        # caller hands over a state it no longer changes (to_dict builds a fresh one).
        self._queue.put(("checkpoint", [(seq, state)], future))
        return future

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            group = [item]
            stop = False
            while len(group) < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                group.append(more)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list) -> None:
        """Events of the whole group in one transaction, then each checkpoint in its own (a
        checkpoint is durable no earlier than the events before it, and a failed checkpoint
        fails only itself)."""
        appends = self._after_hole([item for item in group if item[0] == "events"])
        if appends:
            rows = [row for _, rows, _ in appends for row in rows]
            if self._transaction(lambda: self._conn.executemany("INSERT INTO events (seq, body) VALUES (?, ?)", rows),
                                 [f for _, _, f in appends]):
                self._hole = None
                for _, rows, future in appends:
                    future.set_result(rows[-1][0] if rows else None)
            elif self._hole is None and rows:
                self._hole, self._hole_error = rows[0][0], self._last_error
        for _, ((seq, state),), future in (item for item in group if item[0] == "checkpoint"):
            def write(seq=seq, state=state) -> None:
                body = json.dumps(state, separators=(",", ":"))
                self._conn.execute("INSERT OR REPLACE INTO checkpoints (seq, body) VALUES (?, ?)", (seq, body))
                self._conn.execute(  # keep the newest few
                    "DELETE FROM checkpoints WHERE seq < "
                    "(SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT 1 OFFSET ?)", (self.keep_checkpoints - 1,))
                if self.compact:
                    (through,) = self._conn.execute("SELECT MIN(seq) FROM checkpoints").fetchone()
                    self._conn.execute("DELETE FROM events WHERE seq <= ?", (through,))
                    self._conn.execute("INSERT INTO compacted (id, through) VALUES (0, ?) ON CONFLICT (id) "
                                       "DO UPDATE SET through = MAX(through, excluded.through)", (through,))
            if self._transaction(write, [future]):
                future.set_result(seq)

    def _after_hole(self, appends: list) -> list:
        """The appends that may be written now. After an append failed, the log has a hole at its
        first event: until an append starting there succeeds, later events fail unwritten (an
        event is never durable before one appended earlier), so the caller can write the whole
        missing tail again, in order, once the store works."""
        if self._hole is None:
            return appends
        keep, expected = [], self._hole
        for item in appends:
            rows, future = item[1], item[2]
            if not rows or rows[0][0] == expected:
                keep.append(item)
                expected = rows[-1][0] + 1 if rows else expected
            else:
                future.set_exception(StoreError(f"store commit failed: event {self._hole} is not durable yet "
                                                f"({self._hole_error})"))
        return keep

    def _transaction(self, work, futures: list[Future]) -> bool:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            work()
            self._conn.execute("COMMIT")
        except Exception as e:  # nothing of it is acknowledged; the caller says so (once, not per try)
            log.debug("store commit failed: %s", e)
            self._last_error = str(e)
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for future in futures:
                future.set_exception(StoreError(f"store commit failed: {e}"))
            return False
        self.groups += 1
        return True

    # ---- reading ---------------------------------------------------------------------------

    def read_since(self, seq: int, chunk: int = 10_000) -> Iterator[Event]:
        with self._read_lock:
            row = self._read.execute("SELECT through FROM compacted").fetchone()
        if row is not None and seq < row[0]:
            raise StoreCompacted(seq, row[0])
        return self._read_chunks(seq, chunk)

    def _read_chunks(self, seq: int, chunk: int) -> Iterator[Event]:
        last = seq
        while True:  # in chunks: a long log is never all in memory at once
            with self._read_lock:
                rows = self._read.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                          (last, chunk)).fetchall()
            for _, body in rows:
                yield json.loads(body)
            if len(rows) < chunk:
                return
            last = rows[-1][0]

    def latest_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        with self._read_lock:
            row = self._read.execute("SELECT seq, body FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return row[0], json.loads(row[1])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join(30.0)
        self._conn.close()
        self._read.close()
