"""The tokens file of a local cell (``corral up``): an admin token and one bound token per agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def ensure_cell_tokens(path: Path, user: str, agents: list[str]) -> tuple[str, dict[str, str]]:
    """The tokens file of a local cell (mode 0600): an admin token for ``user`` and one agent token
    per agent, bound to its machine (created when missing, kept when present). Returns (admin
    token, agent -> token)."""
    import secrets  # here: every command's help registers up.py, which imports this module

    import yaml

    from corral.model.private import write_private

    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if isinstance(loaded, dict):
            data = loaded
    by_user = {(e.get("user"), e.get("role")): t for t, e in data.items() if isinstance(e, dict)}
    admin = by_user.get((user, "admin"))
    if admin is None:
        admin = secrets.token_urlsafe(24)
        data[admin] = {"user": user, "role": "admin"}
    tokens = {}
    for name in agents:
        token = by_user.get((f"agent-{name}", "agent"))
        if token is None:
            token = secrets.token_urlsafe(24)
        # each agent's token is bound to its machine (a file of an older corral gains the binding)
        data[token] = {"user": f"agent-{name}", "role": "agent", "machine": name}
        tokens[name] = str(token)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, yaml.safe_dump(data))
    return str(admin), tokens
