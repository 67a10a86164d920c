"""The live master: the core behind a lock, a store, a scheduler thread and a ticker.

Every command runs under one lock: the core applies it and hands back events
and effects; the events are appended to the store (group commit) inside the
lock, so log order is apply order, and the caller waits for durability
*outside* the lock, so many commands share one fsync. Effects go to the
agent transport only once their events are durable. If the store fails to
make events durable, writes answer 503 with the reason until it works again:
a probe writes the events it missed, in order, and writes resume on their own
(corral.master.store_health). An event that fails halfway through applying
marks the master ``broken`` instead: its memory is suspect, and only a restart
(which rebuilds from the log) makes it trustworthy again.

The scheduler thread runs the core's one scheduling round (corral.master.rounds),
the same the simulator runs, handing it only this service's lock and a
``persist`` that appends the commit's events and delivers its effects once
durable: a snapshot under the lock, a plan without it, a commit under it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import Future
from typing import Any

from corral.master.commands import AgentReport, Kill, RegisterMachine, Submit, Tick, Update, UsageReport
from corral.master.core import MasterCore, Outcome
from corral.master.errors import MasterUnavailable
from corral.master.eventlog import log_events
from corral.master.history import EventHistory
from corral.master.store_health import StoreHealth
from corral.master.usage import UsageHistory
from corral.store.base import Store, StoreError, done

log = logging.getLogger(__name__)


_WAKING = (Submit, Update, RegisterMachine, Kill)


def not_durable(error: BaseException) -> MasterUnavailable:
    return MasterUnavailable(f"not acknowledged: the store did not make it durable ({error}); it takes effect "
                             "if the store recovers (retry with the same X-Request-Id to learn whether it did)")


class Master:
    def __init__(self, core: MasterCore, store: Store, schedule_interval_s: float = 0.25,
                 tick_interval_s: float = 1.0, checkpoint_every: int = 50_000, min_round_gap_s: float = 0.005):
        self.core, self.store = core, store
        self.lock = threading.RLock()
        self.schedule_interval_s = schedule_interval_s
        self.tick_interval_s = tick_interval_s
        self.checkpoint_every = checkpoint_every
        # Rounds are at least this far apart even when submissions keep waking the loop: under a
        # stream of submissions the scheduler places batches instead of one task per round.
        self.min_round_gap_s = min(min_round_gap_s, schedule_interval_s)
        self.broken: BaseException | None = None
        self.store_health = StoreHealth(self)  # a failing store: 503 until it works again
        self._last_checkpoint = core.state.seq
        self._last_append: Future = done()  # the newest append; the log is durable up to it once it resolves
        self._wake = threading.Event()
        self._wakes = [self._wake]  # one per scheduler thread: a submission wakes them all
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._profile_threads: list[threading.Thread] = []
        self.rounds = 0
        self.rebalancer = None  # corral.master.rebalancer.Rebalancer, when the cell turns it on
        # This master has no election (one replica): it leads the cell from start() on.
        self.leading = False
        # The newest logged events, for GET /api/v1/events (refilled from the log after a restart).
        self.history = EventHistory()
        self.history.fill(store, core.state.seq)
        from corral.master.metrics import MasterMetrics  # prometheus-client: not for the simulator

        self.metrics = MasterMetrics(self)
        self.usage = UsageHistory()  # usage over time, fed by the link's polls (soft state)
        # Who this master is among the cell's masters (GET /api/v1/master); a replica replaces it.
        self.role_info: Any = lambda: {"role": "leader", "pid": os.getpid(), "applied": self.core.state.seq}
        self.replica: Any = None  # corral.master.replica.Replica when this is one of several masters

    @classmethod
    def recover(cls, store: Store, cell: str = "local", **core_args: Any) -> "Master":
        """A master whose state is rebuilt from ``store`` (checkpoint + log)."""
        state = MasterCore.rebuild(store, cell)
        service_args = {k: core_args.pop(k) for k in ("schedule_interval_s", "tick_interval_s", "checkpoint_every",
                                                      "min_round_gap_s") if k in core_args}
        core = MasterCore(state=state, cell=cell, **core_args)
        now = core.clock.now()
        for machine in state.machines.values():
            machine.last_seen = now  # give every agent a fresh chance to answer
        return cls(core, store, **service_args)

    # ---- commands ------------------------------------------------------------------------------

    def submit_command(self, cmd: Any) -> tuple[dict[str, Any], Future]:
        """Apply ``cmd``; return its reply and a future resolved once its events are durable (and
        its effects handed to the transport). Raises AdmissionError if refused."""
        with self.lock:
            if self.broken is not None:
                raise MasterUnavailable(f"the master's store failed: {self.broken}")
            if self.store_health.failure is not None:
                raise MasterUnavailable(f"the master's store is failing ({self.store_health.failure}); writes "
                                        f"resume on their own once it works again")
            if self.replica is not None and not self.replica.leading:  # its core only follows the log
                raise MasterUnavailable(f"this master is a {self.replica.role}, not the leader")
            self.metrics.commands.labels(type(cmd).__name__).inc()
            try:
                out = self.core.handle(cmd)
            except BaseException as e:
                self._after_failure(e)
                raise
            durable = self._persist(out)
        if isinstance(cmd, _WAKING) or (isinstance(cmd, (AgentReport, UsageReport)) and out.events):
            self.wake()  # something may fit now: the next round need not wait for its interval
        return out.reply, durable

    def _after_failure(self, e: BaseException) -> None:
        """A command failed (under the lock). Events it applied before failing are persisted so the
        log matches memory; if an event failed halfway through applying, memory is suspect and the
        master stops accepting writes."""
        applied = getattr(e, "applied_events", None)
        if applied:
            dicts = [event.to_dict() for event in applied]
            self.store.append(dicts)
            self.history.add(dicts)
        if self.core.corrupt:
            self.broken = e
            log.error("an event failed to apply; the master stops accepting writes until restarted")

    def _persist(self, out: Outcome, from_round: bool = False) -> Future:
        """Append ``out``'s events (under the lock); effects follow once they are durable.
        ``from_round``: the commit of a scheduling round (its evictions are preemptions)."""
        if not out.events:
            # Nothing new, but the answer may rest on events not durable yet (a duplicate request id
            # answered with a job submitted a moment ago): answer once the log is durable up to here.
            self.core.deliver(out.effects)
            return self._last_append
        dicts = [event.to_dict() for event in out.events]
        appended = time.monotonic()
        future = self.store.append(dicts)
        self._last_append = future
        self.history.add(dicts)
        self.metrics.logged(dicts, from_round)
        log_events(dicts, from_round)
        future.add_done_callback(lambda f: self.metrics.append_seconds.observe(time.monotonic() - appended))
        self.store_health.appended(dicts, out.effects, future)  # its effects once durable, or held
        self._maybe_checkpoint()
        return future

    def execute(self, cmd: Any, timeout_s: float = 30.0) -> dict[str, Any]:
        """Apply ``cmd`` and wait until it is durable (threads)."""
        reply, durable = self.submit_command(cmd)
        try:
            durable.result(timeout_s)
        except StoreError as e:
            raise not_durable(e) from None
        return reply

    async def aexecute(self, cmd: Any) -> dict[str, Any]:
        """Apply ``cmd`` and wait until it is durable (asyncio). A store that failed to make it
        durable (etcd without a quorum, a deposed leader) is MasterUnavailable (HTTP 503)."""
        reply, durable = self.submit_command(cmd)
        await self.adurable(durable)
        return reply

    @staticmethod
    async def adurable(durable: Future) -> None:
        """Wait (asyncio) until ``durable`` resolves; a store that failed is MasterUnavailable."""
        try:
            await asyncio.wrap_future(durable)
        except StoreError as e:
            raise not_durable(e) from None

    def _maybe_checkpoint(self) -> None:
        if self.core.state.seq - self._last_checkpoint >= self.checkpoint_every:
            self.checkpoint()

    def checkpoint(self) -> Future:
        with self.lock:
            self._last_checkpoint = self.core.state.seq
            return self.store.write_checkpoint(self.core.state.seq, self.core.state.to_dict())

    # ---- the scheduler loop --------------------------------------------------------------------

    def wake(self) -> None:
        for event in self._wakes:
            event.set()

    def schedule_once(self, profile: str = "default") -> dict[str, Any]:
        """One scheduling round of scheduler ``profile`` (the core's one round) under this service's
        lock; returns once its commits are durable."""
        started = time.monotonic()
        try:
            result = self.core.schedule(lock=self.lock, persist=lambda out: self._persist(out, from_round=True),
                                        stopped=lambda: self.unavailable() is not None, profile=profile)
        except BaseException as e:
            with self.lock:
                self._after_failure(e)
            raise
        if result.persisted is not None:
            result.persisted.result(30.0)
        if not result.skipped:
            self.rounds += 1
            self.metrics.round(time.monotonic() - started, result)
        if self.rebalancer is not None and self.unavailable() is None:
            moved = self.rebalancer.run(lock=self.lock, persist=lambda out: self._persist(out, from_round=True))
            if moved is not None and moved.events:
                self._wake.set()  # the room it freed is for the next round
        return result.reply()

    def commit_plan(self, profile: str, rnd: Any, plan: Any, retry: bool = False) -> tuple[dict[str, Any], Future]:
        """Commit a plan an external scheduler of ``profile`` made (plan_api.py) as a round's commit is:
        under the lock, checked again per placement; counted in the profile's stats. The reply has
        ``backoff_s``: how long the scheduler should wait before its next round."""
        with self.lock:
            why = self.unavailable()
            if why is None and self.replica is not None and not self.replica.leading:
                why = f"this master is a {self.replica.role}, not the leader"
            if why is not None:
                raise MasterUnavailable(f"the master takes no plans now: {why}")
            try:
                out = self.core.commit(rnd, plan)
            except BaseException as e:
                self._after_failure(e)
                raise
            durable = self._persist(out, from_round=True)
            reply = out.reply
            pause = self.core.profiles.record(profile, reply["placed"], len(reply["stale"]), int(retry),
                                              reply["preempted"])
        if out.events:
            self.wake()
        return {**reply, "backoff_s": pause}, durable

    def tick(self) -> None:
        reply, durable = self.submit_command(Tick())
        durable.result(30.0)

    def start(self) -> None:
        """Run the scheduler thread (ticks, and the default profile's rounds unless it is external)
        and one thread for every other profile the master runs itself (profiles.py)."""
        self.leading = True  # run_master logs it, after the line that says where the master serves
        runners = self.core.profiles
        internal = runners.internal()
        main = "default" if "default" in internal else None
        self._thread = threading.Thread(target=self._loop, args=(main, self._wake, True),
                                        name="corral-master-scheduler", daemon=True)
        self._thread.start()
        for name in internal:
            if name == main:
                continue
            wake = threading.Event()
            self._wakes.append(wake)
            thread = threading.Thread(target=self._loop, args=(name, wake, False), daemon=True,
                                      name=f"corral-master-scheduler-{name}")
            self._profile_threads.append(thread)
            thread.start()

    def _loop(self, profile: str | None, wake: threading.Event, ticks: bool) -> None:
        next_tick = time.monotonic()
        backoff = self.core.profiles.stats[profile].backoff if profile is not None else None
        while not self._stop.is_set():
            wait = self.schedule_interval_s
            if backoff is not None and not ticks:  # its plans kept conflicting: sleep the pause out
                wait = max(wait, backoff.remaining(self.core.clock.now()))  # (the ticking thread only skips)
            wake.wait(wait)
            wake.clear()
            if self._stop.is_set():
                return
            if self.unavailable() is not None:
                continue  # no ticks or rounds while writes are refused (said once, when it began)
            try:
                if ticks and time.monotonic() >= next_tick:
                    self.tick()
                    next_tick = time.monotonic() + self.tick_interval_s
                if profile is None or (backoff is not None and backoff.remaining(self.core.clock.now()) > 0):
                    continue
                started = time.monotonic()
                self.schedule_once(profile)
                # A long round (a big backlog) is followed by as long a pause: the scheduler takes
                # at most about half the master's time from request handling.
                self._stop.wait(max(self.min_round_gap_s, min(time.monotonic() - started, 1.0)))
            except MasterUnavailable:
                pass  # the store failed meanwhile: logged by whoever saw it first
            except Exception:
                log.exception("scheduling round failed")
                time.sleep(self.schedule_interval_s)

    def unavailable(self) -> str | None:
        """Why writes are refused now (a broken master, a failing store), or None."""
        if self.broken is not None:
            return str(self.broken)
        return self.store_health.failure

    def announce(self) -> None:
        """Log that this master leads its cell (a single master: it does from start())."""
        log.info("leading cell %s (a single master: no election) from event %d", self.core.state.cell,
                 self.core.state.seq)

    def stop(self, checkpoint: bool = True) -> None:
        if self.leading:
            log.info("no longer leading cell %s: stopping", self.core.state.cell)
        self.leading = False
        self._stop.set()
        self.wake()
        self.store_health.stop()
        for thread in [self._thread, *self._profile_threads]:
            if thread is not None:
                thread.join(30.0)
        if checkpoint and self.unavailable() is None:
            try:
                self.checkpoint().result(30.0)
            except Exception:
                log.exception("final checkpoint failed")
        self.store.close()
