"""Bearer tokens: who is calling (a user, an admin or an agent).

Tokens file (YAML)::

    s3cr3t-alice: {user: alice, role: user}
    s3cr3t-ops: {user: ops, role: admin}
    s3cr3t-agents: {user: agents, role: agent}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.master.quota import ConfigFileError, read_yaml

ROLES = ("user", "admin", "agent")


@dataclass(frozen=True)
class Principal:
    user: str
    role: str  # user | admin | agent

    @property
    def admin(self) -> bool:
        return self.role == "admin"


class Tokens:
    def __init__(self, table: dict[str, Principal]):
        self.table = table

    @classmethod
    def parse(cls, data: Any, source: str = "tokens") -> "Tokens":
        if not isinstance(data, dict):
            raise ConfigFileError(f"{source}: expected a mapping token -> {{user, role}}")
        table = {}
        for i, (token, entry) in enumerate(data.items()):
            if not isinstance(entry, dict) or not isinstance(entry.get("user"), str):
                raise ConfigFileError(f"{source}: entry {i + 1}: expected {{user: NAME, role: user|admin|agent}}")
            role = entry.get("role", "user")
            if role not in ROLES:
                raise ConfigFileError(f"{source}: entry {i + 1} ({entry['user']}): role must be one of "
                                      f"{', '.join(ROLES)}, got {role!r}")
            table[str(token)] = Principal(entry["user"], role)
        return cls(table)

    @classmethod
    def load(cls, path: str | Path) -> "Tokens":
        return cls.parse(read_yaml(path, "tokens"), str(path))

    def lookup(self, token: str) -> Principal | None:
        return self.table.get(token)
