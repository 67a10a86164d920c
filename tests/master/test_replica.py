"""Replicas on one etcd store, in one process: a follower's warm core, takeover, and a leader cut off
from etcd that stops acknowledging before another one starts (never two acknowledging)."""

from __future__ import annotations

import threading
import time

import pytest

from corral.master.replica import Replica
from corral.master.service import Master, MasterUnavailable
from corral.master.commands import Submit
from corral.store import StoreError, open_store
from tests.master.helpers import spec


def replica(url: str, name: str) -> Replica:
    store = open_store(url)
    return Replica(Master.recover(store, schedule_interval_s=0.05), store, f"http://{name}").start()


def wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def stop(*replicas: Replica) -> None:
    for r in replicas:
        r.stop()
        r.master.stop(checkpoint=False)


def test_a_follower_keeps_a_warm_core_and_refuses_to_write(etcd_url):
    a = replica(etcd_url, "a")
    wait(lambda: a.leading, 10, "a to lead")
    b = replica(etcd_url, "b")
    try:
        for i in range(5):
            a.master.execute(Submit(spec(f"j{i}")))
        wait(lambda: b.master.core.state.seq == a.master.core.state.seq, 10, "b to apply the log")
        assert set(b.master.core.state.jobs) == set(a.master.core.state.jobs)
        assert b.info()["role"] == "follower" and b.leader_url() == "http://a"
        with pytest.raises(StoreError, match="follower"):
            b.store.append([{"seq": 10_000, "type": "x"}])
        with pytest.raises(MasterUnavailable, match="follower"):  # refused before its core changes
            b.master.execute(Submit(spec("nope")))
        assert "nope.alice" not in b.master.core.state.jobs
    finally:
        stop(a, b)


def test_a_follower_that_fell_behind_a_checkpoint_installs_it_and_goes_on_following(etcd_url):
    a = replica(etcd_url, "a")
    wait(lambda: a.leading, 10, "a to lead")
    b = replica(etcd_url, "b")
    try:
        a.master.execute(Submit(spec("j0")))
        wait(lambda: b.master.core.state.seq == a.master.core.state.seq, 10, "b to apply the log")
        behind = b.master.core.state.seq
        with b.master.lock:  # b's tail cannot apply while a writes, checkpoints and compacts the log
            for i in range(1, 4):
                a.master.execute(Submit(spec(f"j{i}")))
            a.master.checkpoint().result(10)
            with pytest.raises(Exception, match="checkpoint"):
                list(b.store.read_since(behind))  # what b had not applied is gone from etcd
        a.master.execute(Submit(spec("j4")))
        wait(lambda: b.master.core.state.seq == a.master.core.state.seq, 10, "b to catch up from the checkpoint")
        assert b.role == "follower" and set(b.master.core.state.jobs) == set(a.master.core.state.jobs)
        assert set(b.master.core.state.pending) == set(a.master.core.state.pending)
        assert b.master.core.state.observer is b.master.core.queue  # the installed state still tells the queue
    finally:
        stop(a, b)


def test_a_leader_cut_off_from_etcd_stops_acknowledging_and_a_follower_takes_over_never_both(etcd_url):
    a = replica(etcd_url, "a")
    wait(lambda: a.leading, 10, "a to lead")
    b = replica(etcd_url, "b")
    acks: list[tuple[float, str, str]] = []  # (when, master, job)
    halt = threading.Event()

    def stream(r: Replica, name: str) -> None:
        i = 0
        while not halt.is_set():
            i += 1
            job = f"{name}{i}"
            try:
                r.master.execute(Submit(spec(job)), timeout_s=10)
                acks.append((time.monotonic(), name, job + ".alice"))
            except (MasterUnavailable, StoreError):
                time.sleep(0.01)

    threads = [threading.Thread(target=stream, args=(r, n), daemon=True) for r, n in ((a, "a"), (b, "b"))]
    try:
        for t in threads:
            t.start()
        wait(lambda: len(acks) >= 10, 10, "acknowledged submissions")

        def cut(*args, **kw):  # a's etcd client path is gone: nothing it sends reaches etcd
            raise StoreError("etcd is unreachable (cut off)")
        original_call, original_commit = a.store.call, a.store.appender.commit
        a.store.call = lambda coro, timeout_s=None: (coro.close(), cut())[1]  # reads, lease, election
        a.store.appender.commit = cut  # and the write path's channel of its own
        cut_at = time.monotonic()
        wait(lambda: b.leading, 15, "b to take over")
        took_over = time.monotonic() - cut_at
        wait(lambda: any(who == "b" for _, who, _ in acks), 10, "b to acknowledge")
        halt.set()
        for t in threads:
            t.join(15)
        last_a = max(t for t, who, _ in acks if who == "a")
        first_b = min(t for t, who, _ in acks if who == "b")
        assert last_a < first_b, "two masters acknowledged at once"
        assert a.role == "deposed" and took_over < 5
        assert {job for _, _, job in acks} <= set(b.master.core.state.jobs)  # nothing acknowledged lost
        a.store.call, a.store.appender.commit = original_call, original_commit
    finally:
        halt.set()
        stop(a, b)
