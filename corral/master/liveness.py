"""Failure detection and its brakes: which agents are down, and how fast their tasks may move.

Pure logic on a clock; no I/O, no threads. The link shards feed :class:`Liveness`
one outcome per poll; the master core asks :class:`RescheduleLimiter` which
lost tasks it may hand to the scheduler now.

* An agent that misses ``misses_to_down`` consecutive polls is **down**: the
  link tells the core (``MachineDown``), which takes the machine out of the
  cell and moves its tasks back to pending (transition ``lost``).
* Moving work is rate-limited (Borg §3.3): a large outage and a network
  partition look alike from the master, and rescheduling a whole partition's
  work at once would overload the rest of the cell and throw away tasks that
  are still running. Lost tasks queue in a token bucket (``rate_per_s``
  tasks per second, ``burst`` at once); the ones still queued wait with a
  pending reason that says so. If their machine answers again before their
  turn, the core takes them back where they run (no restart).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

from corral.master.clock import Clock


@dataclass
class _Seen:
    misses: int = 0
    down: bool = False


class Liveness:
    """Consecutive missed polls per machine; ``missed`` / ``answered`` say when a machine flips."""

    def __init__(self, misses_to_down: int = 3):
        if misses_to_down < 1:
            raise ValueError(f"misses_to_down: expected an integer >= 1, got {misses_to_down}")
        self.misses_to_down = misses_to_down
        self._seen: dict[str, _Seen] = {}

    def missed(self, machine: str) -> bool:
        """One poll of ``machine`` failed. True exactly when this miss makes it down."""
        seen = self._seen.setdefault(machine, _Seen())
        seen.misses += 1
        if not seen.down and seen.misses >= self.misses_to_down:
            seen.down = True
            return True
        return False

    def answered(self, machine: str) -> bool:
        """A poll of ``machine`` succeeded. True exactly when it was down until now."""
        seen = self._seen.setdefault(machine, _Seen())
        was_down = seen.down
        seen.misses, seen.down = 0, False
        return was_down

    def is_down(self, machine: str) -> bool:
        seen = self._seen.get(machine)
        return bool(seen and seen.down)

    def misses(self, machine: str) -> int:
        seen = self._seen.get(machine)
        return seen.misses if seen else 0

    def forget(self, machine: str) -> None:
        self._seen.pop(machine, None)


class RescheduleLimiter:
    """A token bucket over lost tasks: at most ``burst`` at once, then ``rate_per_s`` per second.

    ``add`` queues tasks (oldest first); ``release(still_waiting)`` returns the
    names allowed to be rescheduled now, spending one token per task that is
    still waiting (tasks that left the pending state cost nothing and are
    dropped); ``held(name)`` tells whether a task is still queued.
    """

    def __init__(self, clock: Clock, rate_per_s: float = 20.0, burst: int = 20):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"expected rate_per_s > 0 and burst >= 1, got {rate_per_s}, {burst}")
        self.clock, self.rate_per_s, self.burst = clock, float(rate_per_s), int(burst)
        self._tokens = float(burst)
        self._at = clock.now()
        self._queue: OrderedDict[str, str] = OrderedDict()  # task -> the machine it was lost with
        self.released = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, tasks: Iterable[str], machine: str) -> None:
        for name in tasks:
            self._queue.pop(name, None)
            self._queue[name] = machine

    def held(self, name: str) -> str | None:
        """The machine ``name`` was lost with if it still waits its turn, else None."""
        return self._queue.get(name)

    def discard(self, name: str) -> None:
        self._queue.pop(name, None)

    def positions(self) -> dict[str, int]:
        """Every queued task -> how many are ahead of it (0: it is next)."""
        return {name: i for i, name in enumerate(self._queue)}

    def _refill(self) -> None:
        now = self.clock.now()
        if now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate_per_s)
        self._at = max(self._at, now)

    def release(self, still_waiting=lambda name: True) -> list[str]:
        """Tasks that may be rescheduled now, in the order they were lost."""
        if not self._queue:
            self._refill()
            return []
        self._refill()
        out = []
        while self._queue:
            name = next(iter(self._queue))
            if not still_waiting(name):
                self._queue.popitem(last=False)
                continue
            if self._tokens < 1.0:
                break
            self._queue.popitem(last=False)
            self._tokens -= 1.0
            out.append(name)
        self.released += len(out)
        return out

    def describe(self, name: str, ahead: int = 0) -> str:
        machine = self._queue.get(name, "?")
        return (f"lost with machine {machine}; waiting its turn to be rescheduled (after machine failures at most "
                f"{self.rate_per_s:g} tasks/s move, {ahead} ahead of it)")
