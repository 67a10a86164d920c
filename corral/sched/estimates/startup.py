"""Start-up cost per machine: how long from placement until a task runs there.

The first start of a job's command on a machine pays for fetching and unpacking
(Borg's package installation, §3.2; Apollo's "initialization time") and is
counted apart from later starts of the same job there, which find it warm. Per
machine, two running means (first and warm); a machine with none of its own
answers with the cell's, and a cell with none answers 0. Pure.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from corral.sched.estimates.sketch import RunningMean


class StartupEstimator:
    def __init__(self) -> None:
        self._first: dict[str, RunningMean] = {}
        self._warm: dict[str, RunningMean] = {}
        self._cell_first = RunningMean()
        self._cell_warm = RunningMean()
        self._seen: dict[str, set[Hashable]] = {}  # machine -> keys (jobs, classes) started there

    def to_dict(self, encode_key: Callable[[Hashable], Any]) -> dict[str, Any]:
        """Its means and what is warm where, in the order observed (machines) and sorted by their
        written form (a machine's keys: a set has no order of its own)."""
        return {"first": [[m, r.to_list()] for m, r in self._first.items()],
                "warm": [[m, r.to_list()] for m, r in self._warm.items()],
                "cell_first": self._cell_first.to_list(), "cell_warm": self._cell_warm.to_list(),
                "seen": [[m, sorted((encode_key(k) for k in keys), key=repr)] for m, keys in self._seen.items()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], decode_key: Callable[[Any], Hashable]) -> "StartupEstimator":
        out = cls()
        out._first = {m: RunningMean.from_list(r) for m, r in d["first"]}
        out._warm = {m: RunningMean.from_list(r) for m, r in d["warm"]}
        out._cell_first, out._cell_warm = RunningMean.from_list(d["cell_first"]), RunningMean.from_list(d["cell_warm"])
        out._seen = {m: {decode_key(k) for k in keys} for m, keys in d["seen"]}
        return out

    def is_warm(self, machine: str, key: Hashable) -> bool:
        return key in self._seen.get(machine, ())

    def observe(self, machine: str, keys: tuple[Hashable, ...], seconds: float) -> None:
        """A task started on ``machine`` ``seconds`` after it was placed; ``keys[0]`` (its job) decides
        first or warm; every key is then warm there."""
        seconds = max(0.0, seconds)
        warm = self.is_warm(machine, keys[0])
        book, cell = (self._warm, self._cell_warm) if warm else (self._first, self._cell_first)
        book.setdefault(machine, RunningMean()).add(seconds)
        cell.add(seconds)
        self._seen.setdefault(machine, set()).update(keys)

    def forget_machine(self, machine: str) -> None:
        """A lost machine comes back empty: nothing is warm there any more (its means stay)."""
        self._seen.pop(machine, None)

    def first_s(self, machine: str) -> float:
        own = self._first.get(machine)
        return own.mean if own is not None and own.n else self._cell_first.mean

    def warm_s(self, machine: str) -> float:
        own = self._warm.get(machine)
        if own is not None and own.n:
            return own.mean
        return self._cell_warm.mean if self._cell_warm.n else self.first_s(machine)

    def estimate(self, machine: str, key: Hashable) -> float:
        return self.warm_s(machine) if self.is_warm(machine, key) else self.first_s(machine)
