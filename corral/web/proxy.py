"""The UI's way into the master: the HTTP API itself, in process, with the user's bearer token.

Every read and every change of the UI is a request to ``/api/v1`` on the same
application (httpx's ASGI transport: no socket, the same routes, auth checks,
validation and errors as any client), so the UI can do exactly what the
token may do through the API, and no more.
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """The API refused: its status and its one-line message (an ErrorBody's)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Api:
    def __init__(self, app: Any, timeout_s: float = 30.0):
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://corral-ui",
                                         timeout=timeout_s)

    async def call(self, token: str, method: str, path: str, json: Any = None,
                   params: dict[str, Any] | None = None) -> Any:
        """``method /api/v1{path}`` as the token's user; the JSON answer, or :class:`ApiError`."""
        kept = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self._client.request(method, "/api/v1" + path, json=json, params=kept,
                                              headers={"Authorization": f"Bearer {token}"})
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code // 100 != 2:
            message = body.get("message") if isinstance(body, dict) else None
            raise ApiError(response.status_code, str(message or response.text[:300] or response.status_code))
        return body

    async def get(self, token: str, path: str, **params: Any) -> Any:
        return await self.call(token, "GET", path, params=params)
