"""Fair-share configuration and the dominant shares it implies.

A cell's users have weights (default 1) and may sit in groups that have
weights of their own (YARN's and Kueue's hierarchies, one level deep). A
user's *dominant share* is the largest, over resources, of what its tasks hold
divided by the cell's capacity, divided by its weight; a group's is the same
over the sum of its users' tasks, divided by the group's weight. A user in no
group is a group of one with the user's weight.

Read from the cell configuration (``shares:`` in ``corral master --config``)::

    shares:
      users: {alice: 2, bob: 1}
      groups:
        research: {weight: 2, users: [alice, carol]}

Pure: no I/O. Bad input raises :class:`SharesError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np


class SharesError(ValueError):
    pass


@dataclass(frozen=True)
class Group:
    weight: float
    users: tuple[str, ...]


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SharesError(f"{where}: expected a weight > 0, got {value!r}")
    return float(value)


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SharesError(f"{where}: expected a user name, got {value!r}")
    return value.strip()


@dataclass(frozen=True)
class ShareConfig:
    weights: Mapping[str, float] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)

    def __post_init__(self) -> None:
        member: dict[str, str] = {}
        for name, group in self.groups.items():
            for user in group.users:
                if user in member:
                    raise SharesError(f"shares.groups: user {user!r} is in both {member[user]!r} and {name!r}")
                member[user] = name
        object.__setattr__(self, "_group_of", member)

    @classmethod
    def parse(cls, data: Any) -> "ShareConfig":
        """From the ``shares:`` mapping of a cell configuration (None: every weight 1, no groups)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise SharesError(f"shares: expected a mapping with users and groups, got {type(data).__name__}")
        unknown = set(map(str, data)) - {"users", "groups"}
        if unknown:
            raise SharesError(f"shares: unknown key {sorted(unknown)[0]!r}; expected users or groups")
        users = data.get("users") or {}
        if not isinstance(users, dict):
            raise SharesError(f"shares.users: expected a mapping user: weight, got {type(users).__name__}")
        weights = {_name(u, "shares.users"): _weight(w, f"shares.users.{u}") for u, w in users.items()}
        groups_in = data.get("groups") or {}
        if not isinstance(groups_in, dict):
            raise SharesError(f"shares.groups: expected a mapping group: {{weight, users}}, got {type(groups_in).__name__}")
        groups = {}
        for name, spec in groups_in.items():
            where = f"shares.groups.{name}"
            if not isinstance(spec, dict):
                raise SharesError(f"{where}: expected a mapping with weight and users, got {type(spec).__name__}")
            extra = set(map(str, spec)) - {"weight", "users"}
            if extra:
                raise SharesError(f"{where}: unknown key {sorted(extra)[0]!r}; expected weight or users")
            members = spec.get("users")
            if not isinstance(members, list) or not members:
                raise SharesError(f"{where}.users: expected a non-empty list of user names, got {members!r}")
            groups[_name(name, "shares.groups")] = Group(
                _weight(spec.get("weight", 1), f"{where}.weight"),
                tuple(_name(u, f"{where}.users") for u in members),
            )
        return cls(weights, groups)

    def weight(self, user: str) -> float:
        return self.weights.get(user, 1.0)

    def group_of(self, user: str) -> str | None:
        return self._group_of.get(user)  # type: ignore[attr-defined]

    def group_key(self, user: str) -> tuple[int, str]:
        """The top-level unit ``user`` belongs to: its group, or itself (a group of one)."""
        group = self.group_of(user)
        return (0, group) if group is not None else (1, user)

    def key_weight(self, key: tuple[int, str]) -> float:
        return self.groups[key[1]].weight if key[0] == 0 else self.weight(key[1])

    def key_members(self, key: tuple[int, str]) -> tuple[str, ...]:
        return self.groups[key[1]].users if key[0] == 0 else (key[1],)


def inverse(total: np.ndarray) -> np.ndarray:
    """1 / the cell's capacity per resource, 0 where the cell has none of it."""
    return np.divide(1.0, total, out=np.zeros(total.shape), where=total > 0)


def dominant(usage: np.ndarray, inv: np.ndarray, weight: float = 1.0) -> float:
    return float((usage * inv).max()) / weight if len(usage) else 0.0


@dataclass(frozen=True)
class ShareRow:
    name: str
    kind: str  # "user" or "group"
    group: str | None
    weight: float
    dominant_share: float  # weighted: share / weight
    share: float  # unweighted
    dominant_resource: str
    running: int
    pending: int


def share_table(config: ShareConfig, usage: Mapping[str, np.ndarray], total: np.ndarray, dims: Iterable[str],
                running: Mapping[str, int], pending: Mapping[str, int]) -> list[ShareRow]:
    """One row per user (every user with usage, running or pending tasks, or a weight) and one per
    configured group, groups first, by name."""
    dims = tuple(dims)
    inv = inverse(total)
    zero = np.zeros(len(dims), dtype=np.int64)
    users = sorted(set(usage) | set(running) | set(pending) | set(config.weights)
                   | {u for g in config.groups.values() for u in g.users})

    def row(name: str, kind: str, group: str | None, weight: float, used: np.ndarray, run: int, wait: int) -> ShareRow:
        fractions = used * inv
        top = int(fractions.argmax()) if len(fractions) else 0
        share = float(fractions[top]) if len(fractions) else 0.0
        return ShareRow(name, kind, group, weight, share / weight, share, dims[top] if share > 0 else "-", run, wait)

    rows = []
    for name in sorted(config.groups):
        group = config.groups[name]
        used = sum((usage.get(u, zero) for u in group.users), zero)
        rows.append(row(name, "group", None, group.weight, used, sum(running.get(u, 0) for u in group.users),
                        sum(pending.get(u, 0) for u in group.users)))
    for user in users:
        rows.append(row(user, "user", config.group_of(user), config.weight(user), usage.get(user, zero),
                        running.get(user, 0), pending.get(user, 0)))
    return rows
