"""Whether the master's store takes writes, and getting them written once it does again.

A single master (no replicas) whose store fails to make events durable (a full disk, an I/O
error) keeps its state in memory, which is then ahead of its log. It does not stop for good:

* the first failure is logged once, with its reason; from then on every write answers 503 with
  that reason (``failure``) and nothing new is applied, so memory waits where it is;
* the events not known durable stay here, in order, with the effects they hold back (no task is
  started or killed on the strength of an event the log may not keep);
* a probe thread tries every ``probe_interval_s`` to append those events again, in order (the
  store fails anything after a hole, so the log never skips one: corral/store/sqlite.py). When
  that append is durable, the held effects go out, writes resume and one line says so.

Nothing is acknowledged before it is durable: a command whose events failed was answered 503
(not acknowledged). Its events are written when the store works again, so it may take effect
then; a client that retries with the same ``X-Request-Id`` learns which (a duplicate).

A replicated master does not wait: a failed store deposes it (corral/master/replica.py).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from corral.store.base import done

log = logging.getLogger(__name__)


class StoreHealth:
    def __init__(self, master: Any, probe_interval_s: float = 1.0, probe_timeout_s: float = 30.0):
        self.master = master
        self.probe_interval_s, self.probe_timeout_s = probe_interval_s, probe_timeout_s
        self.failure: str | None = None  # the first failure's reason while the store is failing
        self.failing_since: float | None = None  # wall clock
        self.failures = self.recoveries = 0  # state changes (for metrics and tests)
        self._lock = threading.Lock()
        self._unconfirmed: dict[int, tuple[list[dict], Any]] = {}  # first seq -> (events, effects)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- what _persist hands over (under the master's lock) ----------------------------------

    def appended(self, events: list[dict], effects: Any, future: Future) -> None:
        """``events`` went to the store; deliver ``effects`` once they are durable, or hold both."""
        key = events[0]["seq"]
        with self._lock:
            self._unconfirmed[key] = (events, effects)
        future.add_done_callback(lambda f: self._settled(key, f))

    def _settled(self, key: int, future: Future) -> None:
        error = future.exception()
        with self._lock:
            if error is None:
                _, effects = self._unconfirmed.pop(key, (None, None))
            else:
                effects = None
                first = self.failure is None
                if first:
                    self.failure, self.failing_since = str(error), time.time()
                    self.failures += 1
        if error is None:
            if effects is not None:
                self._deliver(effects)
            return
        if self.master.replica is not None:  # a replica is deposed instead (another one takes over)
            self.master.broken = error
            log.error("store failed; the master stops accepting writes: %s", error)
            return
        if first:
            log.error("the store failed; writes answer 503 until it works again (tried every %gs): %s",
                      self.probe_interval_s, error)
            self._start_probe()

    def _deliver(self, effects: Any) -> None:
        try:
            self.master.core.deliver(effects)
        except Exception:  # the transport is not ours to crash on
            log.exception("delivering effects failed")

    # ---- the probe ---------------------------------------------------------------------------

    def _start_probe(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._probe_loop, name="corral-store-probe", daemon=True)
        self._thread.start()

    def _probe_loop(self) -> None:
        while not self._stop.wait(self.probe_interval_s):
            if self.failure is None or self.try_recover():
                return

    def try_recover(self) -> bool:
        """Append the events not known durable again, in order (nothing else is appended meanwhile:
        writes are refused); True once they are durable and writes resume."""
        master = self.master
        with master.lock:
            self._settle_in_flight()
            with self._lock:
                groups = sorted(self._unconfirmed.items())
            events = [e for _, (evs, _) in groups for e in evs]
            try:
                future = master.store.append(events)
                future.result(self.probe_timeout_s)
            except Exception as e:  # still failing: said once already
                log.debug("the store still fails: %s", e)
                return False
            with self._lock:
                for key, _ in groups:
                    self._unconfirmed.pop(key, None)
                failed_for = time.time() - (self.failing_since or time.time())
                self.failure, self.failing_since = None, None
                self.recoveries += 1
            master._last_append = future if events else done()
        for _, (_, effects) in groups:
            self._deliver(effects)
        log.warning("the store works again after %.1fs: %d events written that were not durable; writes resume",
                    failed_for, len(events))
        return True

    def _settle_in_flight(self, timeout_s: float = 5.0) -> None:
        """Wait (briefly) for appends still queued before the failure to come back (they fail behind
        the hole, or were written): their events are in ``_unconfirmed`` until they settle."""
        last = self.master._last_append
        try:
            last.result(timeout_s)
        except Exception:
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
