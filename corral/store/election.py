"""Leader election on etcd: a lease, a create-if-absent transaction, renewal, and the fence.

``campaign()`` blocks until this candidate holds ``P leader`` (a key under its
own lease, created only if absent); it then fences the store on that key's
create revision, so every later write commits only while the key is still the
one this candidate created. The leader renews its lease every ``ttl_s / 4``;
when a renewal fails, or none succeeded for ``ttl_s``, it calls ``on_lost``
(the key may be gone: the fence refuses its writes already). A candidate that
loses waits for the key to go (a watch) and tries again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable

from corral.store.base import StoreError

log = logging.getLogger(__name__)


class Election:
    def __init__(self, store: Any, candidate: str, url: str, ttl_s: int = 1,
                 on_lost: Callable[[str], None] | None = None):
        self.store, self.candidate, self.url = store, candidate, url
        self.ttl_s = ttl_s
        self.on_lost = on_lost or (lambda why: None)
        self.key = store.key("leader")
        self.lease_id = 0
        self.leading = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def leader(self) -> dict[str, Any] | None:
        """``{"candidate", "url"}`` of the leader now, or None while there is none."""
        try:
            kvs, _, _ = self.store.call(self.store.range(self.key), timeout_s=self.store.timeout_s * 2)
        except Exception:  # etcd unreachable: no leader we can name
            return None
        return json.loads(kvs[0].value) if kvs else None

    def try_once(self) -> bool:
        """One create-if-absent attempt under a fresh lease; True if this candidate leads now."""
        client, t = self.store.client, self.store.client.transactions
        value = json.dumps({"candidate": self.candidate, "url": self.url}).encode()

        async def attempt() -> tuple[bool, int, int]:
            lease = await client.lease(self.ttl_s)
            ok, responses = await client.transaction(compare=[t.version(self.key) == 0],
                                                     success=[t.put(self.key, value, lease=lease.id)], failure=[])
            if not ok:
                await client.revoke_lease(lease.id)
                return False, 0, 0
            return True, lease.id, responses[0].response_put.header.revision

        ok, lease_id, revision = self.store.call(attempt(), timeout_s=self.store.timeout_s * 3)
        if ok:
            self.lease_id = lease_id
            self.store.fence(self.key, revision)
            self.leading.set()
            self._renewer = threading.Thread(target=self._renew, name="corral-lease", daemon=True)
            self._renewer.start()
        return ok

    def campaign(self) -> bool:
        """Block until this candidate leads (True) or ``stop()`` (False)."""
        while not self._stop.is_set():
            try:
                if self.try_once():
                    return True
                self._wait_for_vacancy()
            except Exception as e:  # etcd unreachable or a candidate racing us: try again
                log.info("campaign: %s", e)
                self._stop.wait(0.1)
        return False

    def _wait_for_vacancy(self) -> None:
        async def wait() -> None:
            kvs, revision, _ = await self.store.range(self.key)
            if not kvs:
                return
            try:
                await self.store.client.watch_once(self.key, timeout=self.ttl_s, start_revision=revision + 1)
            except self.store._aetcd.exceptions.WatchTimeoutError:
                pass
        self.store.call(wait(), timeout_s=self.ttl_s + self.store.retry_s)

    def _renew(self) -> None:
        last_ok = time.monotonic()
        client = self.store.client
        while not self._stop.wait(self.ttl_s / 4):
            try:
                reply = self.store.call(client.refresh_lease(self.lease_id), timeout_s=self.ttl_s / 2)
                if reply is None or reply.TTL <= 0:
                    return self._lost("the lease expired in etcd")
                last_ok = time.monotonic()
            except Exception as e:
                if time.monotonic() - last_ok >= self.ttl_s:
                    return self._lost(f"no renewal for {self.ttl_s} s ({e})")

    def _lost(self, why: str) -> None:
        self.leading.clear()
        log.error("leadership lost: %s", why)
        self.on_lost(why)

    def resign(self) -> None:
        """Stop leading (revoke the lease, so a follower takes over at once) or campaigning."""
        self._stop.set()
        if self.leading.is_set():
            self.leading.clear()
            try:
                self.store.call(self.store.client.revoke_lease(self.lease_id), timeout_s=2.0)
            except (StoreError, Exception):  # the lease expires on its own
                pass
