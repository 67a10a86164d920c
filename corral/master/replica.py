"""One master of several on one etcd store: a follower with a warm core, or the elected leader.

A follower applies the log to its core's state as etcd grows it (a watch on
the log's head) and campaigns beside that (corral.store.election). On winning
it finishes applying the log (the fence is in place, so no deposed leader's
write can land after this read), gives every agent a fresh chance to answer,
and only then starts the service's scheduler and hands ``on_promote`` the
turn (the live master starts its link: the agents' next full reports
re-adopt every running task, none is restarted).

A follower that fell behind a checkpoint (the leader compacted events it had
not applied yet) installs that checkpoint in place and goes on following.

A leader that loses its lease, or whose store failed, stops acknowledging at
once (its writes are refused by the fence or failed) and calls ``on_deposed``:
a deposed leader's memory may be ahead of the log, so the process restarts
from the log as a follower. The core stays sans-IO: this is the service layer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from corral.master.service import Master, MasterUnavailable
from corral.master.state import CellState
from corral.store.base import StoreCompacted
from corral.store.election import Election

log = logging.getLogger(__name__)


class Replica:
    def __init__(self, master: Master, store: Any, url: str, candidate: str | None = None, ttl_s: int = 1,
                 on_promote: Callable[[], None] | None = None, on_deposed: Callable[[str], None] | None = None):
        self.master, self.store, self.url = master, store, url
        self.candidate = candidate or f"{url} pid {os.getpid()}"
        self.election = Election(store, self.candidate, url, ttl_s=ttl_s, on_lost=self.depose)
        self.on_promote = on_promote or (lambda: None)
        self.on_deposed = on_deposed or (lambda why: None)
        self.role = "follower"
        self.promoted_at: float | None = None
        self._leader: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        master.role_info, master.replica = self.info, self
        store.require_fence = True  # nothing is written before this master leads

    # ---- what the API asks -------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self.role == "leader"

    def leader_url(self) -> str | None:
        if self.leading:
            return self.url
        leader = self._leader
        return leader.get("url") if leader else None

    def info(self) -> dict[str, Any]:
        return {"role": self.role, "url": self.url, "pid": os.getpid(), "applied": self.master.core.state.seq,
                "leader": self.leader_url()}

    # ---- running -------------------------------------------------------------------------------

    def start(self) -> "Replica":
        for target, name in ((self._follow, "corral-follow"), (self._campaign, "corral-campaign")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _apply_new(self) -> None:
        """Apply the events etcd holds after what this core has (under the master's lock)."""
        with self.master.lock:
            state = self.master.core.state
            for event in self.store.read_since(state.seq):
                state.apply(event)
            state.cancelled.clear()  # the leader killed those copies; a follower sends nothing

    def _follow(self) -> None:
        while not self._stop.is_set() and self.role == "follower":
            try:
                self._leader = self.election.leader()
                self.store.wait_for(self.master.core.state.seq, timeout_s=0.25)
                if self.role == "follower":
                    self._apply_new()
            except StoreCompacted as e:
                try:  # the leader compacted what this follower had not applied yet: start from its checkpoint
                    self._install_checkpoint()
                except Exception as failed:
                    return self.depose(f"this follower fell behind a checkpoint ({e}) and could not load it "
                                       f"({failed}); restart to load it")
            except Exception as e:  # etcd unreachable: keep the warm state, try again
                log.info("following the log: %s", e)
                self._stop.wait(0.1)

    def _install_checkpoint(self) -> None:
        """Replace this follower's state with the newest checkpoint and the log after it."""
        with self.master.lock:
            found = self.store.latest_checkpoint()
            if found is None:
                raise StoreCompacted(self.master.core.state.seq, 0)
            fresh = CellState.from_dict(found[1])
            for event in self.store.read_since(fresh.seq):
                fresh.apply(event)
            fresh.cancelled.clear()
            core = self.master.core
            behind = core.state.seq
            core.state.adopt(fresh)
            core.queue.reset(core.state.pending)
            core.failover.watch_failed_over(core.state)
        log.warning("this follower fell behind a checkpoint at seq %d: installed it (seq %d -> %d)",
                    found[0], behind, core.state.seq)

    def _campaign(self) -> None:
        if not self.election.campaign():
            return
        try:
            self._promote()
        except Exception as e:
            log.exception("taking over failed")
            return self.depose(f"taking over failed: {e}")
        while not self._stop.wait(0.05):  # a leader whose store failed lets another take over
            if self.master.broken is not None and self.role == "leader":
                return self.depose(f"the store failed: {self.master.broken}")

    def _promote(self) -> None:
        self.role = "promoting"
        for thread in self._threads[:1]:
            thread.join(5.0)  # the tail stopped: nothing else applies events now
        started = time.monotonic()
        self._apply_new()  # fenced already: nothing a deposed leader writes lands after this read
        with self.master.lock:
            core = self.master.core
            self.store.resume_from(core.state.seq)
            now = core.clock.now()
            for machine in core.state.machines.values():
                machine.last_seen = now  # every agent gets a fresh chance to answer the new leader
            core.queue.reset(core.state.pending)
            self.master._last_checkpoint = core.state.seq
        self.role = "leader"
        self.promoted_at = time.monotonic()
        log.warning("leading the cell from seq %d (caught up in %.3f s)", core.state.seq, time.monotonic() - started)
        self.master.start()
        self.on_promote()

    def depose(self, why: str) -> None:
        if self.role == "deposed":
            return
        was_leader = self.role in ("leader", "promoting")
        self.role = "deposed"
        self.master.broken = self.master.broken or MasterUnavailable(f"this master was deposed: {why}")
        log.error("%s: %s", "deposed" if was_leader else "stopped following", why)
        self._stop.set()
        self.election.resign()
        self.on_deposed(why)

    def stop(self) -> None:
        self._stop.set()
        self.election.resign()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(5.0)
