"""Reused daemon threads for each task's waiter and log pumps."""

from __future__ import annotations

import threading

from corral.agent.workers import Workers
from tests.agent.conftest import wait_until


def test_a_finished_worker_runs_the_next_job_and_join_waits_for_its_own():
    workers = Workers("t")
    release = threading.Event()
    ran: list[str] = []
    first = workers.run(lambda: (release.wait(5), ran.append("first")), "first")
    assert first.is_alive() and workers.started == 1
    release.set()
    first.join(5)
    assert not first.is_alive() and ran == ["first"]
    wait_until(lambda: workers._idle == 1, what="the worker to wait for the next job")
    second = workers.run(lambda: ran.append(threading.current_thread().name), "second")
    second.join(5)
    assert workers.started == 1 and ran[-1] == "t-1"  # the same thread, not a new one


def test_jobs_that_block_get_threads_of_their_own_and_a_failure_is_only_its_own():
    workers = Workers("t")
    gate = threading.Event()
    blocked = [workers.run(lambda: gate.wait(5), f"pump{i}") for i in range(3)]
    boom = workers.run(lambda: 1 / 0, "boom")
    boom.join(5)
    assert not boom.is_alive() and all(j.is_alive() for j in blocked)
    assert workers.started == 4
    gate.set()
    for job in blocked:
        job.join(5)
    assert not any(j.is_alive() for j in blocked)
    threads = [t for t in threading.enumerate() if t.name.startswith("t-")]
    assert threads and all(t.daemon for t in threads)  # never keep the agent from exiting


def test_an_idle_worker_goes_after_its_idle_time():
    workers = Workers("idle", idle_s=0.05)
    workers.run(lambda: None).join(5)
    wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("idle-")], what="the idle thread to end")
    workers.run(lambda: None).join(5)  # a new one starts for the next job
    assert workers.started == 2
