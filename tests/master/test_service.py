"""The live master's shell: acknowledgement only after durability, effects after events,
a failing store refuses writes until it works again, checkpoints plus log rebuild the state."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from corral.master.clock import ManualClock
from corral.master.commands import Kill, RecordingTransport, RegisterMachine, Submit
from corral.master.core import MasterCore
from corral.master.service import Master, MasterUnavailable
from corral.store.memory import MemoryStore
from corral.store.sqlite import SqliteStore

from tests.master.helpers import spec


class HeldStore(MemoryStore):
    """A memory store whose appends become durable only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[list, Future]] = []

    def append(self, events):
        future: Future = Future()
        self.held.append((events, future))
        return future

    def release(self, fail: bool = False) -> None:
        for events, future in self.held:
            if fail:
                future.set_exception(RuntimeError("disk on fire"))
            else:
                super().append(events)
                future.set_result(events[-1]["seq"])
        self.held.clear()


def master_on(store, **args) -> Master:
    return Master(MasterCore(clock=ManualClock(), validate=True, transport=RecordingTransport(), **args), store)


def test_a_command_is_acknowledged_only_once_its_events_are_durable():
    store = HeldStore()
    master = master_on(store)
    done = threading.Event()
    threading.Thread(target=lambda: (master.execute(Submit(spec("web"))), done.set()), daemon=True).start()
    assert not done.wait(0.2)
    store.release()
    assert done.wait(5)


def test_effects_reach_the_agents_only_after_their_events_are_durable():
    store = HeldStore()
    master = master_on(store)
    master.submit_command(RegisterMachine("m1", {"cpu": "4", "memory": "8Gi"}, address="http://m1"))
    master.submit_command(Submit(spec("web")))
    store.release()
    thread = threading.Thread(target=master.schedule_once, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not store.held and time.monotonic() < deadline:
        time.sleep(0.005)
    assert master.core.state.tasks["0.web.alice.local"].state.value == "running"
    assert master.core.transport.sent == []  # placed in memory, not yet durable: nothing sent
    store.release()
    thread.join(5)
    assert [e.task for e in master.core.transport.sent] == ["0.web.alice.local"]


def test_a_store_that_fails_refuses_writes_holds_the_effects_and_resumes_once_it_works_again():
    store = HeldStore()
    master = master_on(store)
    master.store_health.probe_interval_s = 3600  # the test probes by hand
    master.submit_command(RegisterMachine("m1", {"cpu": "4", "memory": "8Gi"}, address="http://m1"))
    store.release()
    master.submit_command(Submit(spec("web")))
    store.release()
    thread = threading.Thread(target=lambda: pytest.raises(Exception, master.schedule_once), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not store.held and time.monotonic() < deadline:
        time.sleep(0.005)
    store.release(fail=True)  # the placement's events fail
    thread.join(5)
    assert master.unavailable() == "disk on fire" and master.broken is None
    with pytest.raises(MasterUnavailable, match="disk on fire"):
        master.submit_command(Submit(spec("other")))
    assert master.core.transport.sent == []  # its start waits for its events to be durable
    # The probe writes the missing events again; they are held once more, then fail: still failing.
    probe = threading.Thread(target=master.store_health.try_recover, daemon=True)
    probe.start()
    while not store.held and time.monotonic() < deadline:
        time.sleep(0.005)
    store.release(fail=True)
    probe.join(5)
    assert master.unavailable() == "disk on fire"
    # Next time they are durable: the start goes out and writes are taken again.
    probe = threading.Thread(target=master.store_health.try_recover, daemon=True)
    probe.start()
    while not store.held and time.monotonic() < deadline:
        time.sleep(0.005)
    store.release()
    probe.join(5)
    assert master.unavailable() is None
    assert [e.task for e in master.core.transport.sent] == ["0.web.alice.local"]
    assert [e["seq"] for e in store.read_since(0)] == list(range(1, master.core.state.seq + 1))
    _, durable = master.submit_command(Submit(spec("other")))
    store.release()
    assert durable.result(5)


def test_periodic_checkpoints_and_the_log_after_them_rebuild_the_state(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    master = Master(MasterCore(validate=True), store, checkpoint_every=5)
    master.execute(RegisterMachine("m1", {"cpu": "8", "memory": "8Gi"}))
    for i in range(12):
        master.execute(Submit(spec(f"j{i}")))
        if i % 3 == 0:
            master.schedule_once()
    master.execute(Kill("j4.alice"))
    before = master.core.state.to_dict()
    checkpoint = store.latest_checkpoint()
    assert checkpoint is not None and 0 < checkpoint[0] < before["seq"]
    master.stop(checkpoint=False)
    store = SqliteStore(tmp_path / "s.db")
    again = Master.recover(store, validate=True)
    assert again.core.state.to_dict() == before
    again.core.state.validate()
    again.stop()


def test_a_recovered_master_answers_a_retried_request_id_with_the_first_job(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    master = Master(MasterCore(), store)
    first = master.execute(Submit(spec("web"), request_id="abc"))
    master.stop()
    again = Master.recover(SqliteStore(tmp_path / "s.db"))
    reply = again.execute(Submit(spec("web"), request_id="abc"))
    assert reply["duplicate"] and reply["job"] == first["job"]
    again.stop()


def test_a_round_is_skipped_when_nothing_changed_since_the_last_one_planned_everything():
    master = Master(MasterCore(validate=True), MemoryStore())
    master.execute(RegisterMachine("m1", {"cpu": "2", "memory": "8Gi"}))
    master.execute(Submit(spec("big", cpu="4")))
    assert master.schedule_once()["rounds"] == 1
    assert master.schedule_once()["rounds"] == 0  # the same state: the same answer
    master.execute(Submit(spec("small")))
    assert master.schedule_once()["placed"] == 1
    assert master.core.state.tasks["0.big.alice.local"].reason.startswith("0/1 machines are available")


def test_a_duplicate_request_is_answered_only_once_the_first_is_durable():
    store = HeldStore()
    master = master_on(store)
    master.submit_command(Submit(spec("web"), request_id="r1"))
    reply, durable = master.submit_command(Submit(spec("web"), request_id="r1"))
    assert reply["duplicate"] and not durable.done()
    store.release()
    assert durable.result(5)


def test_a_recovered_master_fills_its_event_history_with_what_compaction_left_of_the_log(tmp_path):
    store = SqliteStore(tmp_path / "s.db")  # compacts: a checkpoint deletes the events it covers
    master = Master(MasterCore(), store, checkpoint_every=5)
    master.execute(RegisterMachine("m1", {"cpu": "8", "memory": "8Gi"}))
    for i in range(12):
        master.execute(Submit(spec(f"j{i}")))
    last = master.core.state.seq
    through = store.latest_checkpoint()[0]
    assert 0 < through < last
    master.stop(checkpoint=False)
    again = Master.recover(SqliteStore(tmp_path / "s.db"))
    assert (again.history.first_seq, again.history.last_seq) == (through + 1, last)
    again.stop()
