"""The replicated store: the log and its checkpoints in etcd (Raft), every write fenced.

Keys under one prefix ``P`` (``etcd://host:port,host:port/corral/`` → ``/corral/``):

=============================== =================================================================
``P head``                      the seq of the newest event appended (20 digits)
``P events/<last seq>``         one commit group: the JSON list of its events, keyed by its last seq
``P checkpoint``                the newest checkpoint: ``{"seq", "parts", "compacted"}``
``P checkpoints/<seq>/<part>``  its state as JSON, in parts of at most ``max_bytes``
=============================== =================================================================

A writer thread takes everything queued (group commit, as in SQLite) and puts
the events of all those appends as one key (at most ``max_bytes``) in one
transaction (etcd_append.py), resolving their futures only once etcd has
committed it. While fewer appends are queued than the previous group held, it
waits up to ``group_wait_s`` (5 ms) for their writers to come back: one
transaction for them all instead of two (etcd's cost is per transaction).
Every transaction compares ``head`` with the last seq this store
wrote, so no other writer's events slip in between, and, once ``fence`` is set,
the leader key's create revision, so a deposed leader can never append. A
transaction whose answer was lost (a member died under it) is retried and then
told apart by reading its own key back: committed exactly once or not at all.
A failure that cannot be resolved fails that append and every later one.

A checkpoint puts its parts, then in one fenced transaction its pointer, the
deletion of the older checkpoint's parts and (``compact``) of every append it
covers; etcd's own history is compacted to that revision after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Iterator

from corral.store.base import Event, StoreCompacted, StoreError
from corral.store.etcd_append import Appender, pack, pad
from corral.store.etcd_endpoints import grpc_target

log = logging.getLogger(__name__)
_STOP = object()


class EtcdStore:
    kind = "etcd"

    def __init__(self, endpoints: list[str], prefix: str = "/corral/", timeout_s: float = 1.0,
                 retry_s: float = 5.0, max_bytes: int = 1 << 20, compact: bool = True,
                 group_wait_s: float = 0.005, tls: Any = None):
        import aetcd  # the client is an optional dependency of the HA mode

        self._aetcd = aetcd
        self.endpoints, self.prefix = endpoints, prefix.encode()
        self.tls = tls  # a corral.tls.TlsFiles: etcd over TLS, this certificate presented (etcd_tls.py)
        self.timeout_s, self.retry_s = timeout_s, retry_s
        self.max_bytes, self.compact = max_bytes, compact
        self.group_wait_s = group_wait_s
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="corral-etcd", daemon=True)
        self._loop_thread.start()
        host, port = grpc_target(endpoints)
        self.client = self.call(self._connect(host, port), timeout_s=retry_s + timeout_s)
        creds, options = None, []
        if tls is not None:
            from corral.store.etcd_tls import credentials, name_override

            creds, options = credentials(tls), name_override(endpoints)
        self.appender = Appender(f"{host}:{port}", self.prefix, timeout_s, retry_s, creds, options)  # writes
        self.fence_key: bytes | None = None
        self.fence_revision = 0
        self.require_fence = False  # a replicated master's store: nothing is written before it leads
        self._failed: StoreError | None = None
        self._closed = False
        self._lock = threading.Lock()
        try:
            self._last = self.head()  # the newest seq appended (queued), for the order check
        except BaseException:  # etcd unreachable (or refusing this certificate): leave nothing running
            self.appender.close()
            self._stop_loop()
            raise
        self._durable = self._last  # the newest seq etcd committed, what the next txn compares
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.groups = 0
        self._writer = threading.Thread(target=self._write_loop, name="corral-etcd-writer", daemon=True)
        self._writer.start()

    async def _connect(self, host: str, port: int):  # type: ignore[no-untyped-def]
        options = {"grpc.lb_policy_name": "round_robin"}
        if self.tls is not None:
            from corral.store.etcd_tls import name_override, tls_client

            options.update(name_override(self.endpoints))
            client = tls_client(self._aetcd, self.tls, host=host, port=port, timeout=self.timeout_s, options=options)
        else:
            client = self._aetcd.Client(host=host, port=port, timeout=self.timeout_s, options=options)
        await client.connect()
        return client

    def key(self, name: str) -> bytes:
        return self.prefix + name.encode()

    # ---- the event loop ------------------------------------------------------------------------

    def call(self, coro: Any, timeout_s: float | None = None) -> Any:
        """Run ``coro`` on this store's event loop and wait for its result (threads)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s or self.retry_s + self.timeout_s)

    async def retrying(self, make: Any, what: str) -> Any:
        """``await make()``, again while etcd is unreachable, for at most ``retry_s``."""
        deadline = time.monotonic() + self.retry_s
        errors = self._aetcd.exceptions
        while True:
            try:
                return await make()
            except (errors.ConnectionFailedError, errors.ConnectionTimeoutError, errors.InternalError) as e:
                if time.monotonic() > deadline:
                    raise StoreError(f"etcd is unreachable ({what}): {e}") from None
                await asyncio.sleep(0.05)

    async def range(self, key: bytes, end: bytes | None = None, limit: int = 0, revision: int = 0):  # type: ignore[no-untyped-def]
        """A linearizable range read: (key-values, the response's revision, more)."""
        rpc = self._aetcd.rpc
        request = rpc.RangeRequest(key=key, range_end=end or b"", limit=limit, revision=revision)
        try:
            response = await self.client.kvstub.Range(request, timeout=self.timeout_s, metadata=self.client.metadata)
        except Exception as e:
            code = getattr(e, "code", lambda: None)()
            if code == rpc.StatusCode.OUT_OF_RANGE:
                raise self._aetcd.exceptions.RevisionCompactedError(0) from None
            self._aetcd.exceptions._handle_exception(e)
        return list(response.kvs), response.header.revision, response.more

    def fence(self, key: bytes, create_revision: int) -> None:
        """From now on every write commits only while ``key`` has this create revision (a leader's
        key under its lease: once it expires or another leader creates it, writes fail)."""
        self.fence_key, self.fence_revision = key, create_revision

    def _guards(self) -> list:
        if self.fence_key is None:
            return []
        return [self.client.transactions.create(self.fence_key) == self.fence_revision]

    # ---- writing -------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self.require_fence and self.fence_key is None:
            raise StoreError("this master is a follower: it writes nothing to the log")

    def resume_from(self, seq: int) -> None:
        """A new leader appends after ``seq``, which must be the log's head."""
        head = self.head()
        if head != seq:
            raise StoreError(f"the log's head is {head}, not {seq}: the state is not caught up")
        with self._lock:
            self._last = self._durable = seq
            self._failed = None

    def append(self, events: list[Event]) -> Future:
        self._check_writable()
        body = json.dumps(events, separators=(",", ":")).encode()
        future: Future = Future()
        with self._lock:
            last = self._last
            for event in events:
                if event["seq"] <= last:
                    raise StoreError(f"event seq {event['seq']} is not after {last}")
                last = event["seq"]
            if len(body) > self.max_bytes:
                raise StoreError(f"one append of {len(body)} bytes exceeds the etcd store's {self.max_bytes}")
            self._last = last
            self._queue.put(("events", (last, body), future))
        return future

    def write_checkpoint(self, seq: int, state: dict[str, Any]) -> Future:
        self._check_writable()
        future: Future = Future()
        self._queue.put(("checkpoint", (seq, state), future))
        return future

    def _write_loop(self) -> None:
        expect = 1  # the appends the previous group acknowledged: their writers are likely back soon
        while True:
            group = [self._queue.get()]
            deadline = time.monotonic() + self.group_wait_s
            while group[-1] is not _STOP and len(group) < 4096:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    wait = deadline - time.monotonic()
                    if len(group) >= expect or wait <= 0:
                        break
                    try:  # a short wait for the rest of the group: one transaction instead of two
                        group.append(self._queue.get(timeout=wait))
                    except queue.Empty:
                        break
            stop = group[-1] is _STOP
            group = [item for item in group if item is not _STOP]
            self._commit(group)
            expect = max(1, len(group))
            if stop:
                return

    def _commit(self, group: list) -> None:
        """Write a group: its appends packed into keys of at most ``max_bytes`` (one transaction
        each, in order); a checkpoint between appends is written in its place."""
        batch: list = []
        size = 0
        for kind, body, future in group:
            if kind == "checkpoint" or (batch and size + len(body[1]) > self.max_bytes):
                self._write_events(batch)
                batch, size = [], 0
            if kind == "checkpoint":
                if self._failed is not None:
                    future.set_exception(self._failed)
                else:
                    self._write_checkpoint(*body, future)
            else:
                batch.append((body, future))
                size += len(body[1])
        self._write_events(batch)

    def _write_events(self, batch: list) -> None:
        if not batch:
            return
        if self._failed is not None:
            for _, future in batch:
                future.set_exception(self._failed)
            return
        last = batch[-1][0][0]
        fence = (self.fence_key, self.fence_revision) if self.fence_key is not None else None
        try:
            if last > self._durable:  # appends of no events leave the log as it is
                self.appender.commit(self._durable, last, pack([body for (_, body), _ in batch]), fence)
        except Exception as e:  # nothing of it is acknowledged, nor anything after it
            self._failed = e if isinstance(e, StoreError) else StoreError(f"etcd append failed: {e}")
            log.error("%s", self._failed)
            for _, future in batch:
                future.set_exception(self._failed)
            return
        self._durable = last
        self.groups += 1
        for (seq, _), future in batch:
            future.set_result(seq)

    def _write_checkpoint(self, seq: int, state: dict[str, Any], future: Future) -> None:
        try:
            body = json.dumps(state, separators=(",", ":")).encode()
        except (TypeError, ValueError) as e:
            future.set_exception(StoreError(f"checkpoint is not JSON: {e}"))
            return
        parts = [body[i:i + self.max_bytes] for i in range(0, len(body), self.max_bytes)] or [b""]
        try:
            self.call(self._txn_checkpoint(seq, parts), timeout_s=self.retry_s * (len(parts) + 1))
        except Exception as e:  # a checkpoint that fails fails alone: the log is untouched
            log.error("etcd checkpoint failed: %s", e)
            future.set_exception(e if isinstance(e, StoreError) else StoreError(f"etcd checkpoint failed: {e}"))
            return
        future.set_result(seq)

    async def _txn_checkpoint(self, seq: int, parts: list[bytes]) -> None:
        t = self.client.transactions
        base = self.key("checkpoints/") + pad(seq) + b"/"
        for i, part in enumerate(parts):
            ok, _ = await self.retrying(lambda i=i, part=part: self.client.transaction(
                compare=self._guards(), success=[t.put(base + b"%06d" % i, part)], failure=[]), "checkpoint")
            if not ok:
                raise StoreError("this master is no longer the leader: its checkpoint was refused")
        found = await self._pointer()
        compacted = seq if self.compact else (found or {}).get("compacted", 0)
        pointer = json.dumps({"seq": seq, "parts": len(parts), "compacted": max(compacted, (found or {}).get(
            "compacted", 0))}).encode()
        ops = [t.put(self.key("checkpoint"), pointer),
               t.delete(self.key("checkpoints/"), range_end=self.key("checkpoints/") + pad(seq))]
        if self.compact:
            ops.append(t.delete(self.key("events/"), range_end=self.key("events/") + pad(seq + 1)))
        ok, responses = await self.retrying(lambda: self.client.transaction(
            compare=self._guards(), success=ops, failure=[]), "checkpoint")
        if not ok:
            raise StoreError("this master is no longer the leader: its checkpoint was refused")
        if self.compact:  # etcd's own history of the deleted keys goes too
            revision = responses[0].response_put.header.revision
            try:
                await self.client.compact(revision)
            except self._aetcd.exceptions.ClientError as e:
                log.debug("etcd compaction at %s: %s", revision, e)

    # ---- reading -------------------------------------------------------------------------------

    async def _pointer(self, revision: int = 0) -> dict[str, Any] | None:
        kvs, _, _ = await self.retrying(lambda: self.range(self.key("checkpoint"), revision=revision), "read")
        return json.loads(kvs[0].value) if kvs else None

    def head(self) -> int:
        """The seq of the newest event etcd holds."""
        kvs, _, _ = self.call(self.retrying(lambda: self.range(self.key("head")), "read"))
        return int(kvs[0].value) if kvs else 0

    def read_since(self, seq: int, page: int = 500) -> Iterator[Event]:
        kvs, revision, _ = self.call(self.retrying(lambda: self.range(self.key("checkpoint")), "read"))
        through = json.loads(kvs[0].value).get("compacted", 0) if kvs else 0
        if seq < through:
            raise StoreCompacted(seq, through)
        return self._pages(seq, revision, page)

    def _pages(self, seq: int, revision: int, page: int) -> Iterator[Event]:
        """Every page read at one revision: one consistent view of the log."""
        start, end = self.key("events/") + pad(seq + 1), self.key("events0")
        while True:
            try:
                kvs, _, more = self.call(self.retrying(lambda: self.range(start, end, page, revision), "read"))
            except self._aetcd.exceptions.RevisionCompactedError:
                raise StoreCompacted(seq, seq + 1) from None
            for kv in kvs:
                for event in json.loads(kv.value):
                    if event["seq"] > seq:
                        yield event
            if not more or not kvs:
                return
            start = kvs[-1].key + b"\0"

    def latest_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        for _ in range(10):  # a newer checkpoint may delete these parts while they are read
            kvs, revision, _ = self.call(self.retrying(lambda: self.range(self.key("checkpoint")), "read"))
            if not kvs:
                return None
            pointer = json.loads(kvs[0].value)
            base = self.key("checkpoints/") + pad(pointer["seq"]) + b"/"
            try:
                parts, _, _ = self.call(self.retrying(lambda: self.range(base, base[:-1] + b"0", 0, revision), "read"))
            except self._aetcd.exceptions.RevisionCompactedError:
                continue
            if len(parts) == pointer["parts"]:
                return pointer["seq"], json.loads(b"".join(kv.value for kv in parts))
        raise StoreError("could not read a consistent checkpoint from etcd")

    def wait_for(self, seq: int, timeout_s: float) -> int:
        """Block until etcd holds events after ``seq`` (a watch on ``head``) or ``timeout_s``
        passed; returns the head seen."""
        async def wait() -> int:
            kvs, revision, _ = await self.range(self.key("head"))
            head = int(kvs[0].value) if kvs else 0
            if head > seq:
                return head
            try:
                event = await self.client.watch_once(self.key("head"), timeout=timeout_s, start_revision=revision + 1)
            except self._aetcd.exceptions.WatchTimeoutError:
                return head
            return int(event.kv.value) if event.kv.value else head
        try:
            return self.call(wait(), timeout_s=timeout_s + self.retry_s)
        except Exception as e:
            raise StoreError(f"etcd is unreachable (watch): {e}") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join(30.0)
        self.appender.close()
        self._stop_loop()

    def _stop_loop(self) -> None:
        try:
            self.call(self.client.close(), timeout_s=5.0)
        except Exception:  # closing a channel to a dead cluster: nothing left to save
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(5.0)
        self.loop.close()
