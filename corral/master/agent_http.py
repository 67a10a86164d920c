"""The link's HTTP client for agents: kept-alive connections on the standard library's http.client.

A master polls every agent every second or two, each at its own address, so the client's cost per
request is the master's cost per poll. httpx spends about 0.5 ms of CPU per request here and its
pool, shared by the addresses of hundreds of agents, reconnects on almost every poll;
``http.client`` on a connection kept per agent costs about a third of that
(bench/hollow_cell.py). :class:`AgentHttp` offers the few calls the link makes, with httpx's
answers and errors (``httpx.Response``, ``httpx.TransportError``), so the link's code and its tests
(which hand it an ``httpx.Client`` with a mock transport) stay the same.

Every call the link makes to an agent is idempotent (a poll, a launch per generation, a kill, the
assignments), so a request on a kept connection that the agent closed meanwhile (its keep-alive
ran out) is sent once more on a new one.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

_IDLE_PER_ADDRESS = 2  # kept connections per agent: a poll and a delivery at most at once
_STALE = (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionResetError, BrokenPipeError)


class AgentHttp:
    """``request(method, url, headers=, json=, params=) -> httpx.Response`` over kept connections."""

    def __init__(self, timeout_s: float = 2.0, connect_timeout_s: float | None = None,
                 ssl_context: ssl.SSLContext | None = None):
        self.timeout_s = timeout_s
        self.connect_timeout_s = min(1.0, timeout_s) if connect_timeout_s is None else connect_timeout_s
        self.ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self.connects = 0  # new connections made (a test and the benchmark read it)

    def request(self, method: str, url: str, headers: dict[str, str] | None = None, json: Any = None,
                params: dict[str, str] | None = None) -> httpx.Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"not an agent address: {url!r}")
        key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        body = None if json is None else jsonlib.dumps(json).encode()
        send_headers = {"Host": parts.netloc, **(headers or {})}
        if body is not None:
            send_headers["Content-Type"] = "application/json"
        conn, kept = self._checkout(key)
        try:
            try:
                status, reply_headers, content = self._exchange(conn, method, target, body, send_headers)
            except _STALE:
                if not kept:
                    raise
                conn.close()  # the agent closed it while it was idle: once more on a new one
                conn, kept = self._new(key), False
                status, reply_headers, content = self._exchange(conn, method, target, body, send_headers)
        except (socket.timeout, TimeoutError) as e:
            conn.close()
            raise httpx.ReadTimeout(f"{method} {url}: timed out after {self.timeout_s:g}s") from e
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise httpx.ConnectError(f"{method} {url}: {e or type(e).__name__}") from e
        # TLS: the agent's certificate, for the link to check that it names the machine polled.
        peer = conn.sock.getpeercert() if isinstance(conn.sock, ssl.SSLSocket) else None
        if reply_headers.get("connection", "").lower() == "close":
            conn.close()
        else:
            self._checkin(key, conn)
        return httpx.Response(status, headers=reply_headers, content=content, extensions={"peer_cert": peer})

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def __enter__(self) -> "AgentHttp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- connections ---------------------------------------------------------------------------

    def _exchange(self, conn: http.client.HTTPConnection, method: str, target: str, body: bytes | None,
                  headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if conn.sock is None:
            conn.timeout = self.connect_timeout_s
            conn.connect()
            conn.sock.settimeout(self.timeout_s)
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        content = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, content

    def _checkout(self, key: tuple[str, str, int]) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            conns = self._idle.get(key)
            if conns:
                return conns.pop(), True
        return self._new(key), False

    def _checkin(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            conns = self._idle.setdefault(key, [])
            if len(conns) < _IDLE_PER_ADDRESS:
                conns.append(conn)
                return
        conn.close()

    def _new(self, key: tuple[str, str, int]) -> http.client.HTTPConnection:
        scheme, host, port = key
        self.connects += 1
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout_s,
                                               context=self.ssl_context or ssl.create_default_context())
        return http.client.HTTPConnection(host, port, timeout=self.timeout_s)

    def forget(self, address: str) -> None:
        """Close the kept connections to ``address`` (an agent that went away)."""
        parts = urlsplit(address)
        key = (parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        with self._lock:
            conns = self._idle.pop(key, [])
        for conn in conns:
            conn.close()
