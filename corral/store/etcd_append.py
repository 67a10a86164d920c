"""The etcd store's write path: one commit group, one fenced transaction, on a gRPC channel of its own.

The store's writer thread hands over everything queued; ``pack`` joins the
appends of a group into one JSON list (one key, ``P events/<last seq>``), and
``Appender.commit`` writes it and the new ``head`` in one transaction that
commits only if

* ``head`` is still the last seq this writer made durable (no other writer's
  events slipped in; the log stays in order), and
* once fenced, the leader key still has the create revision this master won
  the election with (a deposed leader never appends).

One key per group, not per append: etcd's cost is per transaction and per key
(about 2.4 ms of CPU over a 3-member cluster for a transaction, 0.1 ms more for
each key of 700 bytes, on the 2-core test machine), so a group of many appends
costs about what one costs. The channel is synchronous (grpcio's C core; the
writer thread blocks in it with the GIL released) and beside the store's
asyncio client, which serves reads, watches and the election: an append does
not hop to the event loop and back.

Transactions are not pipelined: etcd applies concurrent requests of one client
in any order (measured: 5-20 % of back-to-back transactions two deep were
applied out of order), and each group's compare on ``head`` needs the previous
group applied first. Throughput comes from the group: the next transaction
takes everything that queued while this one was in flight.

A transaction whose answer was lost (a member died under it, a timeout) is
sent again for up to ``retry_s``; if it is refused then, the last key is read
back: it holds exactly this group's bytes only if a lost attempt committed.
"""

from __future__ import annotations

import time
from typing import Any

from corral.store.base import StoreError

# grpc codes after which a transaction may or may not have committed: send it again, then look.
_LOST = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN", "INTERNAL", "CANCELLED")


def pad(n: int) -> bytes:
    return b"%020d" % n


def pack(bodies: list[bytes]) -> bytes:
    """One JSON list of the events of several appends (each a JSON list)."""
    inner = [body[1:-1] for body in bodies if len(body) > 2]
    return b"[" + b",".join(inner) + b"]"


class Appender:
    """Fenced group transactions on a synchronous channel to ``target`` (``host:port`` or gRPC's
    ``ipv4:a:p,b:p`` list, balanced round robin so a dead member is skipped)."""

    def __init__(self, target: str, prefix: bytes, timeout_s: float, retry_s: float, credentials: Any = None,
                 options: list[tuple[str, Any]] | None = None):
        import grpc
        from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

        self.grpc, self.pb = grpc, rpc_pb2
        options = [("grpc.lb_policy_name", "round_robin"), *(options or [])]
        self.channel = (grpc.secure_channel(target, credentials, options) if credentials is not None
                        else grpc.insecure_channel(target, options))
        self.kv = rpc_pb2_grpc.KVStub(self.channel)
        self.prefix, self.timeout_s, self.retry_s = prefix, timeout_s, retry_s

    def _compare(self, durable: int, fence: tuple[bytes, int] | None) -> list:
        pb = self.pb
        head = self.prefix + b"head"
        compare = [pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.VALUE, key=head, value=pad(durable))
                   if durable else pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.VERSION, key=head, version=0)]
        if fence is not None:
            compare.append(pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.CREATE, key=fence[0],
                                      create_revision=fence[1]))
        return compare

    def _get(self, key: bytes) -> Any:
        reply = self.kv.Range(self.pb.RangeRequest(key=key), timeout=self.timeout_s)
        return reply.kvs[0] if reply.kvs else None

    def commit(self, durable: int, last: int, value: bytes, fence: tuple[bytes, int] | None) -> None:
        """Make ``value`` (events through seq ``last``) durable after ``durable``; raises StoreError
        if it did not commit (nothing of it is then in etcd) or if that cannot be told."""
        pb = self.pb
        key = self.prefix + b"events/" + pad(last)
        request = pb.TxnRequest(compare=self._compare(durable, fence), success=[
            pb.RequestOp(request_put=pb.PutRequest(key=key, value=value)),
            pb.RequestOp(request_put=pb.PutRequest(key=self.prefix + b"head", value=pad(last)))])
        deadline = time.monotonic() + self.retry_s
        sent = False  # an attempt whose answer was lost: it may have committed
        while True:
            try:
                if self.kv.Txn(request, timeout=self.timeout_s).succeeded:
                    return
                if sent:  # did a lost attempt commit? our key holds exactly our bytes only if so
                    found = self._get(key)
                    if found is not None and found.value == value:
                        return
                self._why_refused(durable, fence)  # raises unless another attempt may succeed
                if time.monotonic() > deadline:
                    raise StoreError("etcd did not commit the append in time")
                time.sleep(0.02)
            except self.grpc.RpcError as e:
                code = e.code().name if hasattr(e, "code") else "UNKNOWN"
                if code not in _LOST:
                    raise StoreError(f"etcd refused the append ({code}: {e.details()})") from None
                sent = True
                if time.monotonic() > deadline:
                    raise StoreError(f"etcd is unreachable (append): {code} {e.details()}") from None
                time.sleep(0.05)

    def _why_refused(self, durable: int, fence: tuple[bytes, int] | None) -> None:
        """Raise if a refused transaction will never succeed (deposed, or another writer)."""
        if fence is not None:
            found = self._get(fence[0])
            if found is None or found.create_revision != fence[1]:
                raise StoreError("this master is no longer the leader (its lease in etcd is gone): "
                                 "it appends nothing more")
        found = self._get(self.prefix + b"head")
        head = int(found.value) if found is not None else 0
        if head != durable:
            raise StoreError(f"another writer appended to the log (head {head}, expected {durable})")

    def close(self) -> None:
        self.channel.close()
