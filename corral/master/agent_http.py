"""The link's HTTP client for agents: one kept-alive connection per agent, answers parsed by httptools.

A master polls every agent every second or two, each at its own address, so the client's cost per
request is the master's cost per poll. httpx spends about 0.6 ms of CPU per request here, and its
pool, shared by the addresses of hundreds of agents, reconnects on almost every poll; the standard
library's http.client parses headers with the email package. :class:`AgentHttp` keeps a connection
per agent, writes the few requests the link makes itself and parses answers with httptools (the C
parser uvicorn serves with: status, headers, content-length and chunked bodies), about a tenth of
httpx's CPU (bench/hollow_cell.py measures the master per poll). It offers the call the link makes,
``request(method, url, headers=, json=, params=)``, with answers that read like httpx's
(``status_code``, ``content``, ``text``, ``json()``, ``headers``) and httpx's transport errors, so
the link's code and its tests (which hand it an ``httpx.Client`` with a mock transport) stay the same.

Every call the link makes to an agent is idempotent (a poll, a launch per generation, a kill, the
assignments), so a request on a kept connection that the agent closed meanwhile (its keep-alive
ran out) is sent once more on a new one.
"""

from __future__ import annotations

import functools
import json as jsonlib
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

import httptools
import httpx

_IDLE_PER_ADDRESS = 2  # kept connections per agent: a poll and a delivery at most at once
MAX_ANSWER = 64 * 2**20  # an agent's answer larger than this is refused (a full state is ~1 KiB a task)


class _Stale(Exception):
    """A kept connection was closed by the agent before any answer came."""


class Reply:
    """An agent's answer: what the link reads of an httpx.Response (``extensions["peer_cert"]``:
    the agent's TLS certificate, None over plain http; corral.tls.check_peer reads it)."""

    __slots__ = ("status_code", "headers", "content", "url", "extensions")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes, url: str = "",
                 extensions: dict[str, Any] | None = None):
        self.status_code, self.headers, self.content = status_code, headers, content
        self.url, self.extensions = url, extensions or {}

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class _Answer:
    """httptools' callbacks, collecting one answer."""

    __slots__ = ("headers", "body", "size", "done", "keep", "parser")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.done = self.keep = False
        self.parser: Any = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_ANSWER:
            raise httpx.RemoteProtocolError(f"answer over {MAX_ANSWER} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True
        self.keep = self.parser.should_keep_alive()  # known only inside the callback


@functools.lru_cache(maxsize=65536)
def _split(url: str) -> tuple[tuple[str, str, int], str, str]:
    """((scheme, host, port), path and query, Host header) of an agent URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"not an agent address: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), target, parts.netloc


class AgentHttp:
    """``request(method, url, headers=, json=, params=) -> Reply`` over kept connections; thread-safe."""

    def __init__(self, timeout_s: float = 2.0, connect_timeout_s: float | None = None,
                 ssl_context: ssl.SSLContext | None = None):
        self.timeout_s = timeout_s
        self.connect_timeout_s = min(1.0, timeout_s) if connect_timeout_s is None else connect_timeout_s
        self.ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[socket.socket]] = {}
        self._lock = threading.Lock()
        self.connects = 0  # new connections made (tests and the benchmark read it)

    def request(self, method: str, url: str, headers: dict[str, str] | None = None, json: Any = None,
                params: dict[str, str] | None = None) -> Reply:
        path, mark, query = url.partition("?")  # the cache holds addresses and paths, not every query
        key, target, host = _split(path)
        if mark:
            target += "?" + query
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        body = b"" if json is None else jsonlib.dumps(json).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        if json is not None:
            lines.append("Content-Type: application/json")
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        sock, kept = self._checkout(key)
        try:
            try:
                status, answer, keep = self._exchange(sock, message)
            except _Stale:
                sock.close()
                if not kept:
                    raise httpx.RemoteProtocolError(f"{method} {url}: the agent closed the connection")
                sock, kept = self._connect(key), False  # closed while idle: once more on a new one
                status, answer, keep = self._exchange(sock, message)
        except (socket.timeout, TimeoutError) as e:
            sock.close()
            raise httpx.ReadTimeout(f"{method} {url}: timed out after {self.timeout_s:g}s") from e
        except _Stale as e:
            sock.close()
            raise httpx.RemoteProtocolError(f"{method} {url}: the agent closed the connection") from e
        except (OSError, httptools.HttpParserError) as e:
            sock.close()
            raise httpx.ConnectError(f"{method} {url}: {e or type(e).__name__}") from e
        except BaseException:
            sock.close()
            raise
        # TLS: the agent's certificate, for the link to check that it names the machine polled.
        peer = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
        if keep:
            self._checkin(key, sock)
        else:
            sock.close()
        return Reply(status, answer.headers, b"".join(answer.body), url, {"peer_cert": peer})

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock in socks:
                sock.close()

    def __enter__(self) -> "AgentHttp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- connections ---------------------------------------------------------------------------

    @staticmethod
    def _exchange(sock: socket.socket, message: bytes) -> tuple[int, _Answer, bool]:
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        try:
            sock.sendall(message)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise _Stale() from e
        got = False
        while not answer.done:
            try:
                data = sock.recv(65536)
            except ConnectionResetError as e:
                if got:
                    raise
                raise _Stale() from e
            if not data:
                if got:
                    raise httpx.RemoteProtocolError("the agent closed the connection in mid-answer")
                raise _Stale()
            got = True
            parser.feed_data(data)
        return parser.get_status_code(), answer, answer.keep

    def _checkout(self, key: tuple[str, str, int]) -> tuple[socket.socket, bool]:
        with self._lock:
            socks = self._idle.get(key)
            if socks:
                return socks.pop(), True
        return self._connect(key), False

    def _checkin(self, key: tuple[str, str, int], sock: socket.socket) -> None:
        with self._lock:
            socks = self._idle.setdefault(key, [])
            if len(socks) < _IDLE_PER_ADDRESS:
                socks.append(sock)
                return
        sock.close()

    def _connect(self, key: tuple[str, str, int]) -> socket.socket:
        scheme, host, port = key
        self.connects += 1
        try:
            sock = socket.create_connection((host, port), timeout=self.connect_timeout_s)
        except (socket.timeout, TimeoutError) as e:
            raise httpx.ConnectTimeout(f"connect to {host}:{port}: timed out after "
                                       f"{self.connect_timeout_s:g}s") from e
        except OSError as e:
            raise httpx.ConnectError(f"connect to {host}:{port}: {e}") from e
        try:
            # Without it a request's last segment waits out the agent's delayed ACK (40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                context = self.ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            sock.settimeout(self.timeout_s)
        except OSError as e:  # ssl.SSLError among them
            sock.close()
            raise httpx.ConnectError(f"connect to {host}:{port}: {e}") from e
        return sock
