"""The etcd store beyond the contract: fenced writes, one writer, etcd's own history compacted,
members dying under it, and a long soak that stays bounded."""

from __future__ import annotations

import time

import pytest

from corral.store import StoreError, open_store
from corral.store.etcd_endpoints import parse_endpoints
from corral.store.sqlite import SqliteStore


def ev(seq: int) -> dict:
    return {"seq": seq, "type": "test"}


def events_held(store) -> int:
    """How many events the etcd store's prefix holds (every append key's list)."""
    async def count() -> int:
        kvs, _, _ = await store.range(store.key("events/"), store.key("events0"))
        return sum(kv.value.count(b'"seq"') for kv in kvs)
    return store.call(count())


def test_endpoints_and_prefix_are_parsed_with_clear_errors():
    assert parse_endpoints("127.0.0.1:1,127.0.0.2:2/cells/a") == (["127.0.0.1:1", "127.0.0.2:2"], "/cells/a/")
    assert parse_endpoints("127.0.0.1:1") == (["127.0.0.1:1"], "/corral/")
    with pytest.raises(StoreError, match="expected etcd endpoints"):
        parse_endpoints("127.0.0.1")
    with pytest.raises(StoreError, match="expected etcd://"):
        parse_endpoints("/x")


def test_a_fenced_store_appends_only_while_the_leader_key_lives(etcd_url):
    s = open_store(etcd_url)
    try:
        key = s.key("leader")

        async def take() -> tuple[int, int]:
            lease = await s.client.lease(5)
            ok, responses = await s.client.transaction(
                compare=[s.client.transactions.version(key) == 0],
                success=[s.client.transactions.put(key, b"me", lease=lease.id)], failure=[])
            assert ok
            return lease.id, responses[0].response_put.header.revision

        lease_id, revision = s.call(take())
        s.fence(key, revision)
        s.append([ev(1)]).result(10)
        s.call(s.client.revoke_lease(lease_id))  # the lease ends: this writer is deposed
        with pytest.raises(StoreError, match="no longer the leader"):
            s.append([ev(2)]).result(10)
        with pytest.raises(StoreError):  # and everything after it fails too
            s.append([ev(3)]).result(10)
        assert [e["seq"] for e in s.read_since(0)] == [1]
    finally:
        s.close()


def test_two_writers_on_one_log_cannot_interleave(etcd_url):
    a, b = open_store(etcd_url), open_store(etcd_url)
    try:
        a.append([ev(1)]).result(10)
        with pytest.raises(StoreError, match="another writer"):
            b.append([ev(1)]).result(10)  # b believed the log empty
        a.append([ev(2)]).result(10)
        assert [e["seq"] for e in a.read_since(0)] == [1, 2]
    finally:
        a.close()
        b.close()


def test_a_checkpoint_also_compacts_etcds_own_history(etcd_url):
    from aetcd.exceptions import RevisionCompactedError

    s = open_store(etcd_url)
    try:
        s.append([ev(1)]).result(10)
        _, early, _ = s.call(s.range(s.key("head")))
        s.append([ev(2)]).result(10)
        s.write_checkpoint(2, {"n": 2}).result(10)
        with pytest.raises(RevisionCompactedError):
            s.call(s.range(s.key("head"), revision=early))
        assert events_held(s) == 0
    finally:
        s.close()


def test_a_long_checkpoint_is_written_in_parts(etcd_url):
    s = open_store(etcd_url)
    s.max_bytes = 1000
    try:
        state = {"blob": "x" * 10_000}
        s.write_checkpoint(0, state).result(10)
        assert s.latest_checkpoint() == (0, state)
    finally:
        s.close()


def test_a_waiting_reader_wakes_when_the_log_grows(etcd_url):
    s, t = open_store(etcd_url), open_store(etcd_url)
    try:
        assert t.wait_for(0, timeout_s=0.2) == 0
        s.append([ev(1)]).result(10)
        assert t.wait_for(0, timeout_s=5.0) == 1
    finally:
        s.close()
        t.close()


def test_writes_go_on_with_one_member_down_and_stop_with_two_without_losing_anything(own_etcd):
    s = open_store(own_etcd.url)
    s.retry_s = 2.0
    try:
        s.append([ev(1)]).result(10)
        own_etcd.kill_member("etcd0")
        s.append([ev(2)]).result(10)  # a quorum of two remains
        own_etcd.kill_member("etcd1")
        started = time.monotonic()
        with pytest.raises(StoreError, match="unreachable|in time"):
            s.append([ev(3)]).result(15)
        assert time.monotonic() - started < 10
    finally:
        s.close()
    own_etcd.start_member("etcd0")
    own_etcd.start_member("etcd1")
    s = open_store(own_etcd.url)  # a fresh writer (a master restarted from the log) goes on
    try:
        acknowledged = [e["seq"] for e in s.read_since(0)]
        assert acknowledged[:2] == [1, 2]
        s.append([ev(acknowledged[-1] + 1)]).result(10)
    finally:
        s.close()


def _soak(store, held) -> None:
    """200,000 events in appends of 10, a checkpoint every 10,000: the store never holds more than
    one checkpoint's worth of events."""
    seq = 0
    futures = []
    while seq < 200_000:
        futures.append(store.append([ev(seq + i) for i in range(1, 11)]))
        seq += 10
        if seq % 10_000 == 0:
            for f in futures:
                f.result(60)
            futures.clear()
            store.write_checkpoint(seq, {"at": seq}).result(60)
            assert held() <= 10_000
    assert held() == 0 and store.latest_checkpoint() == (200_000, {"at": 200_000})


def test_a_long_soak_keeps_sqlite_bounded(tmp_path):
    s = SqliteStore(tmp_path / "soak.db")
    try:
        _soak(s, lambda: s._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
              + s._conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] - 1)
    finally:
        s.close()


@pytest.mark.slow
def test_a_long_soak_keeps_etcd_bounded(etcd_url):
    s = open_store(etcd_url)
    try:
        _soak(s, lambda: events_held(s))
    finally:
        s.close()


def test_a_tls_etcd_takes_only_clients_with_a_certificate_of_its_ca(etcd_tls_cluster, tmp_path):
    from corral.tls import TlsFiles, init_ca, issue

    cluster, master = etcd_tls_cluster
    url = f"{cluster.url}/tls{time.monotonic_ns()}"
    assert cluster.scheme == "https" and all(cluster.healthy(n) for n in cluster.names)
    s = open_store(url, tls=master)
    try:
        s.append([ev(1)]).result(10)
        s.write_checkpoint(1, {"n": 1}).result(10)
        assert s.latest_checkpoint() == (1, {"n": 1})
    finally:
        s.close()
    init_ca(tmp_path / "other")  # a certificate of another CA, and the right CA without a certificate
    stranger = issue(tmp_path / "other", "master0", role="master")
    from corral.store.etcd import EtcdStore

    # another CA's certificate; a certificate of ours, but another CA to verify etcd; plain gRPC
    for tls in (TlsFiles(stranger.cert, stranger.key, master.ca), TlsFiles(master.cert, master.key, stranger.ca),
                None):
        with pytest.raises(StoreError, match="unreachable"):
            EtcdStore(cluster.endpoints, "/tls/", retry_s=0.5, tls=tls)
    import grpc
    from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

    with grpc.secure_channel(cluster.endpoints[0], grpc.ssl_channel_credentials(master.ca.read_bytes()),
                             options=[("grpc.ssl_target_name_override", "127.0.0.1")]) as channel:
        with pytest.raises(grpc.RpcError):  # the right CA, but no client certificate
            rpc_pb2_grpc.KVStub(channel).Range(rpc_pb2.RangeRequest(key=b"/"), timeout=3)
    s = open_store(url, tls=master)
    try:
        assert s.latest_checkpoint() == (1, {"n": 1}) and s.head() == 1
    finally:
        s.close()
