"""HTTP/1.1 exchanges with a master over the standard library's ``http.client``: kept connections,
separate connect and read time-outs, TLS with a caller's context, streamed answers read line by line.

The client side used httpx for this; importing httpx (with httpcore, h11, idna, anyio and its
default TLS context) was most of a ``corral`` command's start-up, ~0.1 s of ``corral jobs`` on the
2-core machine, for one request that ``http.client`` (~0.03 s, already loaded by httpx itself)
makes as well. What fails before an answer raises :class:`NoAnswer`, saying whether the
connection was never made or the answer never came; the transport turns it into an ApiError.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import select
import socket
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlencode, urlsplit

USER_AGENT = "corral-client"
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"  # what stays as it is in a path (RFC 3986 pchar, and escapes already made)


class NoAnswer(Exception):
    """No answer came: ``kind`` is ``connect_timeout`` (no connection within the connect time-out),
    ``timeout`` (connected, no answer within the read time-out) or ``failed`` (refused, reset,
    a TLS handshake that failed: ``reason`` says which). ``sent``: the request may have reached
    the master."""

    def __init__(self, kind: str, reason: str, sent: bool):
        super().__init__(reason)
        self.kind, self.reason, self.sent = kind, reason, sent


class Answer:
    """A complete answer: ``status_code``, ``headers`` (names lower-cased), ``content``; ``text``
    and ``json()`` decode it (UTF-8, as the master writes)."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes):
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


def target(url: str, params: Any = None) -> tuple[str, str]:
    """``(origin, path?query)`` of ``url`` with ``params`` (a mapping whose values may be lists,
    or pairs) encoded as a query; booleans as ``true``/``false``, as httpx wrote them."""
    parts = urlsplit(url)
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    query = [parts.query] if parts.query else []
    items = params.items() if isinstance(params, dict) else (params or ())
    pairs = [(k, _word(one)) for k, v in items for one in (v if isinstance(v, (list, tuple)) else [v])]
    if pairs:
        query.append(urlencode(pairs))
    return f"{parts.scheme}://{parts.netloc}", path + ("?" + "&".join(query) if query else "")


def _word(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


def _dropped(sock: socket.socket) -> bool:
    """A kept connection the other side closed (or wrote to unasked): readable while idle."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class Connections:
    """One kept connection per origin (``http://host:port``); ``ssl_context()`` is asked for the
    TLS context the first time an https origin is reached. Not thread-safe (a client per thread)."""

    def __init__(self, timeout_s: float, connect_timeout_s: float, ssl_context: Callable[[], Any]):
        self.timeout_s, self.connect_timeout_s, self._make_context = timeout_s, connect_timeout_s, ssl_context
        self._context: Any = None
        self._kept: dict[str, http.client.HTTPConnection] = {}

    def _ssl_context(self) -> Any:
        if self._context is None:
            self._context = self._make_context()
        return self._context

    def close(self) -> None:
        for conn in self._kept.values():
            conn.close()
        self._kept.clear()

    def _open(self, origin: str, read_timeout_s: float | None) -> http.client.HTTPConnection:
        parts = urlsplit(origin)
        host, port = parts.hostname or "", parts.port
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.connect_timeout_s,
                                               context=self._ssl_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.connect_timeout_s)
        try:
            conn.connect()  # the TCP connection and any TLS handshake, within the connect time-out
        except TimeoutError:
            conn.close()
            raise NoAnswer("connect_timeout", "timed out", sent=False) from None
        except OSError as e:  # refused, unreachable, a certificate not trusted or not a master's
            conn.close()
            raise NoAnswer("failed", str(e) or type(e).__name__, sent=False) from e
        conn.sock.settimeout(read_timeout_s)
        return conn

    def _connection(self, origin: str) -> tuple[http.client.HTTPConnection, bool]:
        """The kept connection to ``origin`` (and True), or a new one (False)."""
        conn = self._kept.get(origin)
        if conn is not None and (conn.sock is None or _dropped(conn.sock)):
            conn.close()
            conn = None
        if conn is not None:
            return conn, True
        conn = self._kept[origin] = self._open(origin, self.timeout_s)
        return conn, False

    def exchange(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """Send one request and read its whole answer. A kept connection that turns out closed
        before any answer came is replaced once (the request never reached the master)."""
        origin, path = target(url)
        for fresh_try in (False, True):
            conn, kept = self._connection(origin)
            try:
                conn.request(method, path, body=body, headers=headers)
                reply = conn.getresponse()
                content = reply.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self._kept.pop(origin, None)
                conn.close()
                if kept and not fresh_try:
                    continue
                raise NoAnswer("failed", str(e) or type(e).__name__, sent=True) from e
            except (OSError, http.client.HTTPException) as e:  # a time-out is an OSError too
                self._kept.pop(origin, None)
                conn.close()
                raise _no_answer(e) from e
            if reply.will_close:
                self._kept.pop(origin, None)
                conn.close()
            return Answer(reply.status, {k.lower(): v for k, v in reply.getheaders()}, content)
        raise AssertionError("unreachable")  # the loop returns or raises

    def stream(self, url: str, headers: dict[str, str], read_timeout_s: float | None) -> "Streamed":
        """``GET url`` on a connection of its own, its answer's body read as it comes (see
        :class:`Streamed`; close it). ``read_timeout_s``: None waits as long as it takes."""
        origin, path = target(url)
        conn = self._open(origin, read_timeout_s)
        try:
            conn.request("GET", path, headers=headers)
            return Streamed(conn, conn.getresponse())
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _no_answer(e) from e
        except BaseException:
            conn.close()
            raise


class Streamed:
    """A streamed answer: ``status_code``, ``headers``; ``read()`` the whole body or ``lines()``
    each line as it comes (bytes, its line end removed); both raise NoAnswer."""

    def __init__(self, conn: http.client.HTTPConnection, reply: http.client.HTTPResponse):
        self._conn, self._reply = conn, reply
        self.status_code = reply.status
        self.headers = {k.lower(): v for k, v in reply.getheaders()}

    def read(self) -> bytes:
        try:
            return self._reply.read()
        except (OSError, http.client.HTTPException) as e:
            raise _no_answer(e) from e

    def lines(self) -> Iterator[bytes]:
        while True:
            try:
                line = self._reply.readline()
            except (OSError, http.client.HTTPException) as e:
                raise _no_answer(e) from e
            if not line:
                return
            yield line.rstrip(b"\r\n")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Streamed":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _no_answer(e: OSError | http.client.HTTPException) -> NoAnswer:
    """What a failure after connecting means: no answer within the read time-out, or none at all."""
    if isinstance(e, TimeoutError):
        return NoAnswer("timeout", "timed out", sent=True)
    return NoAnswer("failed", str(e) or type(e).__name__, sent=True)
