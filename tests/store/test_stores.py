"""The store contract, for every implementation: ordered durable log, checkpoints, group commit."""

from __future__ import annotations

import threading

import pytest

from corral.store import MemoryStore, StoreCompacted, StoreError, open_store
from corral.store.sqlite import SqliteStore
from tests.etcd import _prefixes


def ev(seq: int, **fields) -> dict:
    return {"seq": seq, "type": "test", **fields}


def make_store(kind: str, request, tmp_path):
    if kind == "memory":
        return MemoryStore(compact=True)
    if kind == "sqlite":
        return SqliteStore(tmp_path / "state.db")
    if kind == "etcd-tls":  # client certificate auth, the master's certificate
        cluster, master = request.getfixturevalue("etcd_tls_cluster")
        return open_store(f"{cluster.url}/test{next(_prefixes)}", tls=master)
    return open_store(request.getfixturevalue("etcd_url"))


@pytest.fixture(params=["memory", "sqlite", "etcd", "etcd-tls"])
def store(request, tmp_path):
    s = make_store(request.param, request, tmp_path)
    yield s
    s.close()


def test_appended_events_are_read_back_in_order_after_a_given_seq(store):
    assert store.append([ev(1, a=1), ev(2)]).result(5) == 2
    store.append([ev(3, nested={"x": [1, 2]})]).result(5)
    assert [e["seq"] for e in store.read_since(0)] == [1, 2, 3]
    assert list(store.read_since(2)) == [ev(3, nested={"x": [1, 2]})]
    assert list(store.read_since(3)) == []


def test_the_latest_checkpoint_wins(store):
    assert store.latest_checkpoint() is None
    store.append([ev(1), ev(2)]).result(5)
    store.write_checkpoint(1, {"n": 1}).result(5)
    store.write_checkpoint(2, {"n": 2}).result(5)
    assert store.latest_checkpoint() == (2, {"n": 2})


def test_a_sequence_number_cannot_be_written_twice(store):
    store.append([ev(1)]).result(5)
    with pytest.raises(StoreError):
        store.append([ev(1)]).result(5)
    assert [e["seq"] for e in store.read_since(0)] == [1]


def test_sqlite_events_survive_closing_and_reopening(tmp_path):
    path = tmp_path / "s.db"
    s = SqliteStore(path)
    s.append([ev(i) for i in range(1, 101)]).result(5)
    s.write_checkpoint(50, {"half": True}).result(5)
    s.close()
    s = open_store(f"sqlite:///{path}")
    try:
        assert [e["seq"] for e in s.read_since(50)] == list(range(51, 101))  # those up to 50 compacted
        assert s.latest_checkpoint() == (50, {"half": True})
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        s.close()


def test_concurrent_appends_share_commits_and_every_one_is_acknowledged_once_durable(tmp_path):
    s = SqliteStore(tmp_path / "g.db")
    lock = threading.Lock()
    seq = [0]
    futures = []

    def writer():
        for _ in range(200):
            with lock:  # the master appends under its lock: queue order is log order
                seq[0] += 1
                futures.append(s.append([ev(seq[0])]))

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for f in futures:
        f.result(10)
    assert [e["seq"] for e in s.read_since(0)] == list(range(1, 801))
    assert s.groups < 800  # group commit: fewer transactions than appends
    s.close()


def test_a_failed_group_is_never_acknowledged(tmp_path):
    s = SqliteStore(tmp_path / "f.db")
    s.append([ev(1)]).result(5)
    bad = s.append([ev(2), ev(2)])  # duplicate key inside one append: the whole append fails
    with pytest.raises(StoreError):
        bad.result(5)
    assert [e["seq"] for e in s.read_since(0)] == [1]
    s.close()


def test_store_urls_are_checked():
    assert isinstance(open_store("memory://"), MemoryStore)
    with pytest.raises(StoreError, match="expected a store URL"):
        open_store("postgres://x")
    with pytest.raises(StoreError):
        open_store("sqlite://")


def test_a_closed_store_refuses_writes(tmp_path):
    s = SqliteStore(tmp_path / "c.db")
    s.close()
    with pytest.raises(StoreError):
        s.append([ev(1)])


def test_sqlite_reads_a_long_log_in_chunks_and_keeps_the_newest_checkpoints(tmp_path):
    s = SqliteStore(tmp_path / "long.db", keep_checkpoints=2)
    s.append([ev(i) for i in range(1, 2501)]).result(10)
    assert [e["seq"] for e in s.read_since(5, chunk=1000)] == list(range(6, 2501))
    for seq in (10, 20, 30):
        s.write_checkpoint(seq, {"at": seq}).result(5)
    assert s.latest_checkpoint() == (30, {"at": 30})
    assert [r[0] for r in s._conn.execute("SELECT seq FROM checkpoints ORDER BY seq")] == [20, 30]
    s.close()


def test_a_checkpoint_that_cannot_be_written_fails_alone(store):
    s = store
    bad = s.write_checkpoint(1, {"not json": object()})
    good = s.append([ev(1)])
    with pytest.raises(StoreError):
        bad.result(5)
    assert good.result(5) == 1


def test_a_checkpoint_compacts_the_events_it_covers_and_older_reads_say_so(store):
    store.append([ev(i) for i in range(1, 51)]).result(10)
    store.append([ev(i) for i in range(51, 101)]).result(10)
    store.write_checkpoint(60, {"at": 60}).result(10)
    assert store.latest_checkpoint() == (60, {"at": 60})
    assert [e["seq"] for e in store.read_since(60)] == list(range(61, 101))
    with pytest.raises(StoreCompacted, match="start from the latest checkpoint"):
        list(store.read_since(10))
    store.append([ev(101)]).result(10)  # the log goes on after compaction
    assert [e["seq"] for e in store.read_since(99)] == [100, 101]


def test_an_append_after_the_store_reopens_continues_the_log(request, tmp_path):
    for kind in ("sqlite", "etcd"):
        s = make_store(kind, request, tmp_path / kind)
        s.append([ev(1), ev(2)]).result(10)
        s.close()
        s = make_store(kind, request, tmp_path / kind)
        try:
            if kind == "etcd":  # the etcd store checks order itself: it knows the head it left
                with pytest.raises(StoreError, match="not after 2"):
                    s.append([ev(2)])
            s.append([ev(3)]).result(10)
            assert [e["seq"] for e in s.read_since(0)] == [1, 2, 3]
        finally:
            s.close()
