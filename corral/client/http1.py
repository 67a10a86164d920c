"""HTTP/1.1 exchanges with a master: kept connections, separate connect and read time-outs, TLS
with a caller's context, streamed answers read line by line; answers parsed by httptools.

The client side used httpx for this; importing httpx (with httpcore, h11, idna, anyio and its
default TLS context) was most of a ``corral`` command's start-up, ~0.1 s of ``corral jobs`` on the
2-core machine, for one request. The standard library's http.client costs ~0.03 s to import (it
parses headers with the email package, and loads ssl even for http); a socket, and httptools
(the C parser uvicorn serves with, a dependency already; corral/master/agent_http.py polls agents
with it) for status, headers, content-length and chunked bodies, ~0.01 s. ssl is loaded only
for an https master. What fails before an answer raises :class:`NoAnswer`, saying whether the
connection was never made or the answer never came; the transport turns it into an ApiError.
"""

from __future__ import annotations

import json as jsonlib
import select
import socket
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlencode, urlsplit

import httptools

USER_AGENT = "corral-client"
MAX_ANSWER = 256 * 2**20  # a whole answer larger than this is refused (the full event history is far less)
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


class _Parsed:
    """httptools' callbacks for one answer: headers, body chunks as they come, completion."""

    __slots__ = ("headers", "chunks", "size", "headers_done", "done", "keep", "parser")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers_done = self.done = self.keep = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_ANSWER:
            raise NoAnswer("failed", f"an answer over {MAX_ANSWER} bytes", sent=True)
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True
        self.keep = self.parser.should_keep_alive()  # known only inside the callback

    def status(self) -> int:
        return self.parser.get_status_code()


def _read_more(sock: Any, parsed: _Parsed, got: bool) -> None:
    """One read from ``sock`` fed to the parser; the other side closing before the answer is
    whole raises ConnectionResetError (``got``: some of it came already), unless the answer is
    one whose body ends with its connection."""
    data = sock.recv(65536)
    if not data and parsed.headers_done and "content-length" not in parsed.headers \
            and "chunked" not in parsed.headers.get("transfer-encoding", "").lower():
        parsed.done = True  # a body that ends with the connection (an HTTP/1.0 server's)
        return
    if not data:
        raise ConnectionResetError("the master closed the connection" + (" in mid-answer" if got else ""))
    try:
        parsed.parser.feed_data(data)
    except httptools.HttpParserError as e:
        if isinstance(e.__context__, NoAnswer):  # a callback's own (httptools wraps it)
            raise e.__context__ from None
        raise ConnectionResetError(f"not an HTTP answer: {e}") from None


class Connections:
    """One kept connection per origin (``http://host:port``); ``ssl_context()`` is asked for the
    TLS context the first time an https origin is reached. Not thread-safe (a client per thread)."""

    def __init__(self, timeout_s: float, connect_timeout_s: float, ssl_context: Callable[[], Any]):
        self.timeout_s, self.connect_timeout_s, self._make_context = timeout_s, connect_timeout_s, ssl_context
        self._context: Any = None
        self._kept: dict[str, Any] = {}  # origin -> its idle socket

    def close(self) -> None:
        for sock in self._kept.values():
            sock.close()
        self._kept.clear()

    def _open(self, origin: str, read_timeout_s: float | None) -> Any:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            # An ASCII host as bytes: a str one is IDNA-encoded first, which loads two codecs (~2 ms).
            sock = socket.create_connection((host.encode() if host.isascii() else host, port),
                                            timeout=self.connect_timeout_s)
        except TimeoutError:
            raise NoAnswer("connect_timeout", "timed out", sent=False) from None
        except OSError as e:  # refused, unreachable, no such host
            raise NoAnswer("failed", str(e) or type(e).__name__, sent=False) from e
        try:
            # Without it a request's last segment may wait out the master's delayed ACK (40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if parts.scheme == "https":  # the handshake, within the connect time-out
                if self._context is None:
                    self._context = self._make_context()
                sock = self._context.wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            sock.close()
            raise NoAnswer("connect_timeout", "timed out", sent=False) from None
        except OSError as e:  # a certificate not trusted, or not a master's
            sock.close()
            raise NoAnswer("failed", str(e) or type(e).__name__, sent=False) from e
        sock.settimeout(read_timeout_s)
        return sock

    def _send(self, sock: Any, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))

    def exchange(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """Send one request and read its whole answer. A kept connection that turns out closed
        before any of the answer came is replaced once (the master closes idle ones)."""
        origin, _ = target(url)
        sock = self._kept.pop(origin, None)
        if sock is not None and _dropped(sock):
            sock.close()
            sock = None
        kept = sock is not None
        while True:
            if sock is None:
                sock = self._open(origin, self.timeout_s)
            parsed, got = _Parsed(), False
            try:
                self._send(sock, method, url, body, headers)
                while not parsed.done:
                    _read_more(sock, parsed, got)
                    got = True
            except (BrokenPipeError, ConnectionResetError) as e:
                sock.close()
                sock = None
                if kept and not got:  # closed while it was idle: once more on a new connection
                    kept = False
                    continue
                raise NoAnswer("failed", str(e) or type(e).__name__, sent=True) from e
            except OSError as e:  # a time-out is an OSError too
                sock.close()
                raise _no_answer(e) from e
            except BaseException:
                sock.close()
                raise
            if parsed.keep:
                self._kept[origin] = sock
            else:
                sock.close()
            return Answer(parsed.status(), parsed.headers, b"".join(parsed.chunks))

    def stream(self, url: str, headers: dict[str, str], read_timeout_s: float | None) -> "Streamed":
        """``GET url`` on a connection of its own, its answer's body read as it comes (see
        :class:`Streamed`; close it). ``read_timeout_s``: None waits as long as it takes."""
        origin, _ = target(url)
        sock = self._open(origin, read_timeout_s)
        parsed = _Parsed()
        try:
            self._send(sock, "GET", url, None, headers)
            got = False
            while not parsed.headers_done:
                _read_more(sock, parsed, got)
                got = True
        except OSError as e:
            sock.close()
            raise _no_answer(e) from e
        except BaseException:
            sock.close()
            raise
        return Streamed(sock, parsed)


class Streamed:
    """A streamed answer: ``status_code``, ``headers``; ``read()`` the whole body or ``lines()``
    each line as it comes (bytes, its line end removed); both raise NoAnswer."""

    def __init__(self, sock: Any, parsed: _Parsed):
        self._sock, self._parsed = sock, parsed
        self.status_code, self.headers = parsed.status(), parsed.headers

    def _chunks(self) -> Iterator[bytes]:
        parsed = self._parsed
        while True:
            while parsed.chunks:
                yield parsed.chunks.pop(0)
            if parsed.done:
                return
            try:
                _read_more(self._sock, parsed, True)
            except OSError as e:
                raise _no_answer(e) from e

    def read(self) -> bytes:
        return b"".join(self._chunks())

    def lines(self) -> Iterator[bytes]:
        rest = b""
        for chunk in self._chunks():
            *whole, rest = (rest + chunk).split(b"\n")
            for line in whole:
                yield line.rstrip(b"\r")
        if rest:
            yield rest.rstrip(b"\r")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "Streamed":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _no_answer(e: OSError) -> NoAnswer:
    """What a failure after connecting means: no answer within the read time-out, or none at all."""
    if isinstance(e, TimeoutError):
        return NoAnswer("timeout", "timed out", sent=True)
    return NoAnswer("failed", str(e) or type(e).__name__, sent=True)
