"""The cell's masters as an agent sees them: one or several URLs, and posts that find the leader.

``post`` sends to the master it last found leading; a follower's 307 names the
leader (followed with the same headers); a master that does not answer, or
answers 503 (no leader yet, or its store failed), is left for the next one.
Every path the agent posts to is idempotent (registration, notifications), so
sending again is safe.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx


def split_masters(text: str) -> list[str]:
    """``http://a:1,http://b:2`` -> the URLs, each without a trailing slash."""
    return [part.strip().rstrip("/") for part in str(text).split(",") if part.strip()]


class Masters:
    def __init__(self, masters: str | list[str]):
        self.urls = split_masters(masters) if isinstance(masters, str) else list(masters)
        self.current = self.urls[0]

    def post(self, client: Any, path: str, **kw: Any) -> httpx.Response:
        """POST ``path`` to the leader; raises the last httpx.HTTPError if no master answered."""
        error: httpx.HTTPError | None = None
        response: httpx.Response | None = None
        for _ in range(2 * len(self.urls) + 1):
            try:
                response = client.post(self.current + path, **kw)
            except httpx.HTTPError as e:
                error = e
                self._next()
                continue
            location = response.headers.get("location")
            if response.status_code == 307 and location:
                parts = urlsplit(location)
                self.current = f"{parts.scheme}://{parts.netloc}"
                continue
            if response.status_code == 503 and len(self.urls) > 1:
                self._next()
                continue
            return response
        if response is not None:
            return response
        assert error is not None
        raise error

    def _next(self) -> None:
        at = self.urls.index(self.current) if self.current in self.urls else -1
        self.current = self.urls[(at + 1) % len(self.urls)]
