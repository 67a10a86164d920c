"""corral's Python client: ``Client(addr, token)`` over the master's HTTP API.

    from corral.client import Client

    with Client("http://127.0.0.1:7100", token) as corral:
        job = corral.submit({"name": "hello", "tasks": 2, "resources": {"cpu": "250m", "memory": "64Mi"},
                             "command": "echo hello"})
        for event in corral.watch(job=job.job):
            print(event.time, event.type, event.task)

Requests go over the standard library's http.client (corral/client/http1.py); importing this
package loads no pydantic: it comes with the first typed result.
"""

from __future__ import annotations

from typing import Any

from corral.client.errors import ApiError, FieldError

__all__ = ["ApiError", "Client", "FieldError"]


def __getattr__(name: str) -> Any:
    """``Client`` on first use: a command that only needs the errors (``corral --help`` registering
    every command, one that fails before its request) loads no socket, httptools or transport."""
    if name == "Client":
        from corral.client.client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
