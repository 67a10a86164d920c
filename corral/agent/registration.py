"""Registering with the master: retry with backoff until it answers; never give up, never raise.

After a successful registration the agent does not need the master. If no
poll arrives for ``stale_after_s`` (say the master restarted and forgot us)
it registers again; re-registering is idempotent on the master's side.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from corral.agent.masters import Masters

log = logging.getLogger(__name__)

REGISTER_PATH = "/api/v1/agents/register"


class Registrar:
    def __init__(
        self,
        master: str,
        token: str,
        body: Callable[[], dict[str, Any]],
        last_poll: Callable[[], float],
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        seed: str = "",
        timeout_s: float = 5.0,
        verify: Any = True,
    ):
        self.masters = Masters(master)  # one or several, comma-separated: registering finds the leader
        self.verify = verify  # TLS: the cell's context (verifies the master, presents this machine's certificate)
        self.token, self.body, self.last_poll = token, body, last_poll
        self.backoff_s, self.backoff_max_s, self.timeout_s = backoff_s, backoff_max_s, timeout_s
        self.random = random.Random(seed)  # jitter, reproducible per agent name
        self.poll_interval_s = 2.0
        self.registered_at: float | None = None
        self.attempts = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="corral-register", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def register_once(self) -> bool:
        self.attempts += 1
        try:
            with httpx.Client(timeout=self.timeout_s, verify=self.verify) as client:
                response = self.masters.post(client, REGISTER_PATH, json=self.body(),
                                             headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as e:
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        if response.status_code // 100 != 2:
            self.last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            return False
        try:
            reply = response.json()
            self.poll_interval_s = float(reply.get("poll_interval_s", self.poll_interval_s))
        except (ValueError, TypeError, AttributeError):
            pass
        self.registered_at = time.monotonic()
        self.last_error = ""
        log.info("registered with %s (poll every %.1fs)", self.masters.current, self.poll_interval_s)
        return True

    def stale_after_s(self) -> float:
        return max(30.0, 10 * self.poll_interval_s)

    def _loop(self) -> None:
        delay = self.backoff_s
        while not self._stop.is_set():
            try:
                ok = self.register_once()
            except Exception as e:  # never let the registration thread die
                ok, self.last_error = False, repr(e)
            if not ok:
                log.warning("cannot register with %s (%s); retrying in %.1fs", self.masters.current, self.last_error, delay)
                if self._stop.wait(delay * (0.5 + self.random.random())):
                    return
                delay = min(delay * 2, self.backoff_max_s)
                continue
            delay = self.backoff_s
            # Registered: stay quiet while the master polls us.
            while not self._stop.wait(1.0):
                heard = max(self.registered_at or 0.0, self.last_poll())
                if time.monotonic() - heard > self.stale_after_s():
                    log.warning("no poll from the master for %.0fs; registering again", self.stale_after_s())
                    break
