"""What a process can be started with: the one definition of the rules for a task's command,
arguments, working directory and environment, used by the master at admission
(corral.model.spec) and by the agent at launch (corral.agent.launch), so nothing the master
accepts is refused later for a reason knowable at submit.

``execve`` takes C strings: a NUL cannot be in any of them, and an environment entry is
``NAME=VALUE``, so a name cannot hold ``=`` (nor be empty).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ENV_RULE = "environment names that are non-empty and have no '=' or NUL, values without NUL"


def check_env(env: Mapping[str, str]) -> Mapping[str, str]:
    """``env`` if every entry can be passed to a process; ValueError naming the first that cannot."""
    for key, value in env.items():
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"expected {ENV_RULE}, got the name {key!r}")
        if "\0" in value:
            raise ValueError(f"expected {ENV_RULE}, got a NUL in the value of {key}")
    return env


def check_text(value: str | None, what: str) -> str | None:
    """``value`` (a command or a working directory) if it has no NUL; ValueError otherwise."""
    if value is not None and "\0" in value:
        raise ValueError(f"expected a {what} without NUL characters")
    return value


def check_args(args: Iterable[str]) -> Iterable[str]:
    """``args`` if none has a NUL; ValueError naming the first that does."""
    for i, arg in enumerate(args):
        if "\0" in arg:
            raise ValueError(f"expected arguments without NUL characters, got one in argument {i}")
    return args
