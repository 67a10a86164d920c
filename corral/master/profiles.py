"""Scheduler profiles (Omega): several schedulers, each owning a share of the jobs, on shared state.

A profile has a name, a policy (``corral sim --policy`` syntax; None: the cell's), and the jobs it
claims: by band, by appclass, or by the spec's ``scheduler:`` naming it. A job's owner is the
profile its spec names; else the first profile (in configuration order) whose bands or appclasses
claim it; else ``default``, which takes what no profile claims and always exists. A profile marked
``external: true`` is not run by the master: a ``corral scheduler --profile NAME`` process plans
for it through the API. Every profile plans on its own snapshot of the whole cell (only its own
tasks to place) and commits its own plans; the commit re-checks each placement (commit.py).

``ProfileStats`` counts what each profile did, and its ``Backoff`` keeps a scheduler whose plans
keep conflicting from spinning: each round with a conflict doubles its pause before the next round
(from ``base_s``, at most ``cap_s``); a round without one clears it. Pure: times come from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.model.job import AppClass
from corral.model.priority import Band, band_of

DEFAULT = "default"
_KEYS = ("name", "policy", "bands", "appclasses", "external")


class ProfileError(ValueError):
    """A bad profile: ``field`` is where (``schedulers[1].bands``), the message says what was expected."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field, self.message = field_name, message


@dataclass(frozen=True)
class SchedulerProfile:
    name: str
    policy: str | None = None
    bands: tuple[str, ...] = ()
    appclasses: tuple[str, ...] = ()
    external: bool = False

    def claims(self, spec: Any) -> bool:
        """Does this profile claim a job of ``spec`` by its band or appclass?"""
        return (band_of(spec.priority).value in self.bands) or (spec.appclass.value in self.appclasses)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "policy": self.policy, "bands": list(self.bands),
                "appclasses": list(self.appclasses), "external": self.external}


class Profiles:
    """The cell's profiles, ``default`` among them (added, with the cell's policy, if not given)."""

    def __init__(self, profiles: list[SchedulerProfile] | None = None):
        given = list(profiles or [])
        if not any(p.name == DEFAULT for p in given):
            given.append(SchedulerProfile(DEFAULT))
        self.by_name = {p.name: p for p in given}
        self.claiming = [p for p in given if p.bands or p.appclasses]

    def __iter__(self):
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)

    @property
    def single(self) -> bool:
        """Only the default profile, run by the master: today's one scheduler, unchanged."""
        return len(self.by_name) == 1 and not self.by_name[DEFAULT].external

    def owner(self, spec: Any) -> str:
        named = getattr(spec, "scheduler", None)
        if named is not None and named in self.by_name:
            return named
        for p in self.claiming:
            if p.claims(spec):
                return p.name
        return DEFAULT

    def check_spec(self, spec: Any) -> str | None:
        """Why ``spec`` cannot be admitted here (its ``scheduler:`` names no profile), or None."""
        named = getattr(spec, "scheduler", None)
        if named is None or named in self.by_name:
            return None
        return f"no scheduler profile named {named!r} in this cell; profiles: {', '.join(self.by_name)}"

    @classmethod
    def parse(cls, data: Any, where: str = "schedulers") -> "Profiles":
        """Profiles from the cell configuration's ``schedulers:`` list; raises ProfileError."""
        if not isinstance(data, list) or not data:
            raise ProfileError(where, f"expected a list of profiles ({{name, policy, bands, appclasses, "
                                      f"external}}), got {data!r}")
        out: list[SchedulerProfile] = []
        for i, entry in enumerate(data):
            at = f"{where}[{i}]"
            if not isinstance(entry, dict):
                raise ProfileError(at, f"expected a mapping with name, policy, bands, appclasses, external, "
                                       f"got {entry!r}")
            unknown = sorted(set(map(str, entry)) - set(_KEYS))
            if unknown:
                raise ProfileError(f"{at}.{unknown[0]}", f"unknown key; known: {', '.join(_KEYS)}")
            name = entry.get("name")
            if not isinstance(name, str) or not _is_name(name):
                raise ProfileError(f"{at}.name", f"expected lowercase letters, digits, '-' or '_', got {name!r}")
            if any(p.name == name for p in out):
                raise ProfileError(f"{at}.name", f"profile {name!r} given twice")
            policy = entry.get("policy")
            if policy is not None:
                policy = _policy(f"{at}.policy", policy)
            bands = _words(f"{at}.bands", entry.get("bands", []), tuple(b.value for b in Band))
            appclasses = _words(f"{at}.appclasses", entry.get("appclasses", []), tuple(a.value for a in AppClass))
            external = entry.get("external", False)
            if not isinstance(external, bool):
                raise ProfileError(f"{at}.external", f"expected true or false, got {external!r}")
            out.append(SchedulerProfile(name, policy, bands, appclasses, external))
        return cls(out)


def _is_name(text: str) -> bool:
    from corral.model.spec import NAME

    return bool(NAME.match(text))


def _policy(where: str, value: Any) -> str:
    from corral.sched.policy import PolicyError, parse_policy_spec

    if not isinstance(value, str) or not value.strip():
        raise ProfileError(where, f"expected a policy such as hybrid or best-fit=1,spread=0.5, got {value!r}")
    try:
        parse_policy_spec(value).make(0)
    except PolicyError as e:
        raise ProfileError(where, str(e)) from None
    return value


def _words(where: str, value: Any, known: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or any(v not in known for v in value):
        raise ProfileError(where, f"expected a list of {', '.join(known)}, got {value!r}")
    return tuple(value)


@dataclass
class Backoff:
    """Exponential, bounded pause after rounds that conflicted (times from the caller's clock)."""

    base_s: float = 0.05
    cap_s: float = 5.0
    streak: int = 0  # rounds in a row with a conflict
    until: float = 0.0

    def record(self, conflicted: bool, now: float) -> float:
        """Note a round's outcome at ``now``; the pause before the next round (0: none)."""
        if not conflicted:
            self.streak, self.until = 0, 0.0
            return 0.0
        self.streak += 1
        pause = min(self.cap_s, self.base_s * 2 ** min(self.streak - 1, 30))
        self.until = now + pause
        return pause

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)


@dataclass
class ProfileStats:
    """What one profile's scheduler did: rounds run, placements committed, conflicts, retries."""

    rounds: int = 0
    placements: int = 0
    conflicts: int = 0  # placements found stale at commit
    retries: int = 0  # passes planned again for stale placements
    preempted: int = 0
    backoff: Backoff = field(default_factory=Backoff)

    def record(self, placed: int, conflicts: int, retries: int, preempted: int, now: float) -> float:
        """Count one round (or one external commit); the pause its conflicts earn."""
        self.rounds += 1
        self.placements += placed
        self.conflicts += conflicts
        self.retries += retries
        self.preempted += preempted
        return self.backoff.record(conflicts > 0, now)

    def to_dict(self, now: float) -> dict[str, Any]:
        return {"rounds": self.rounds, "placements": self.placements, "conflicts": self.conflicts,
                "retries": self.retries, "preempted": self.preempted,
                "backoff": {"streak": self.backoff.streak, "remaining_s": round(self.backoff.remaining(now), 3)}}
