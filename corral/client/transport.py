"""HTTP to a cell's masters: their URLs, a bearer token, time-outs, retries; the only HTTP path of
corral's client side (the Python client, and through it the ``corral`` command).

A replicated master is several URLs, comma-separated: a follower's 307 is followed to the leader it
names (with the same headers, so a submit keeps its request id), and a master that does not answer
or has no leader yet (503) is left for the next one, for at most ``failover_s``.

The wire is the standard library's http.client (corral/client/http1.py: kept connections, TLS
against the cell's CA), so a ``corral`` command starts without httpx.
"""

from __future__ import annotations

import json as jsonlib
import time
from typing import Any, Iterator

from corral.client.errors import BAD_INPUT, SERVER, START_HINT, ApiError, from_response, one_line
from corral.client.http1 import USER_AGENT, Connections, NoAnswer

# Answers that mean "not now" rather than "no": a request safe to repeat is tried again on them.
_TRY_AGAIN = (502, 503, 504)


class Transport:
    """Requests to ``addr`` (``http://host:port``; a bare ``host:port`` means http; several,
    comma-separated, for a replicated master) with ``token`` as the bearer token; ``ca``: the cell's
    CA certificate an https master is verified against (None: the system's CAs). Connections are
    pooled for the transport's life; ``close()`` ends them."""

    def __init__(self, addr: str, token: str, timeout_s: float = 30.0, connect_timeout_s: float = 5.0,
                 backoff_s: float = 0.2, failover_s: float = 15.0, ca: str | None = None):
        self.addrs = [a if "://" in a else "http://" + a for a in
                      (part.strip().rstrip("/") for part in str(addr).split(",")) if a]
        self.addr = self.addrs[0] if self.addrs else str(addr).strip()
        self.token, self.timeout_s, self.connect_timeout_s = str(token), timeout_s, connect_timeout_s
        self.backoff_s, self.failover_s, self.ca = backoff_s, failover_s, ca
        self._client: Any = None
        for one in self.addrs or [self.addr]:
            check_address(one)
        if not self.token.isascii() or not self.token.isprintable():
            raise ApiError("the token has characters an HTTP header cannot carry (expected printable ASCII)",
                           BAD_INPUT)

    def _http(self) -> Connections:
        if self._client is None:
            self._client = Connections(self.timeout_s, self.connect_timeout_s, self._ssl_context)
        return self._client

    def _ssl_context(self) -> Any:
        """The TLS context of an https master (made on the first https connection only: loading the
        system's CAs costs a plain-http command ~13 ms): verified against the cell's CA when one is
        given, and then its certificate must be a master's (corral.tls_roles; an agent's, of the
        same CA, is not one); else against the system's CAs."""
        import ssl

        if not self.ca:
            return ssl.create_default_context()
        from corral.tls_roles import require_peer_role

        return require_peer_role(ssl.create_default_context(cafile=self.ca), "master")

    def _headers(self, extra: dict[str, str] | None, body: bool) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT, "Accept": "*/*"}
        if body:
            headers["Content-Type"] = "application/json"
        return {**headers, **(extra or {})}

    def _exchange(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Any:
        """One request and its answer (corral.client.http1.Answer); raises NoAnswer."""
        return self._http().exchange(method, url, body, headers)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, path: str, json: Any = None, params: Any = None,
                headers: dict[str, str] | None = None, retries: int = 0) -> Any:
        """The answer (``status_code``, ``headers``, ``content``, ``text``, ``json()``; a status below
        400) to ``METHOD /api/v1PATH``.
        ``retries``: how many more times to try when no answer came or the master answered 502-504
        (only for requests safe to repeat); with several masters such a request (or any GET) goes
        on to the next master until ``failover_s`` has passed. Raises ApiError."""
        from corral.client.http1 import target

        body = None if json is None else jsonlib.dumps(json).encode()
        sent = self._headers(headers, body is not None)
        deadline = time.monotonic() + self.failover_s
        attempt = 0
        while True:
            url = "".join(target(self.addr + "/api/v1" + path, params))
            try:
                response = self._exchange(method, url, body, sent)
            except NoAnswer as e:
                error = self._no_answer(e)
            else:
                if response.status_code == 307 and response.headers.get("location"):
                    self.addr = _origin(response.headers["location"])  # a follower names the leader
                    if time.monotonic() < deadline:
                        continue
                    raise ApiError(f"the masters kept redirecting for {self.failover_s:g} s (no leader answered)",
                                   SERVER, 307)
                if response.status_code < 400:
                    return response
                error = from_response(response.status_code, _json_or_none(response), response.text)
                if response.status_code not in _TRY_AGAIN:
                    raise error
            if len(self.addrs) > 1 and (retries > 0 or method == "GET") and time.monotonic() < deadline:
                self._next_master()  # another master may lead by now
                time.sleep(0.05)
                continue
            attempt += 1
            if attempt > retries:
                raise error
            time.sleep(self.backoff_s * 2 ** (attempt - 1))

    def _next_master(self) -> None:
        at = self.addrs.index(self.addr) if self.addr in self.addrs else -1
        self.addr = self.addrs[(at + 1) % len(self.addrs)]

    def _no_answer(self, e: NoAnswer, read_timeout_s: float | None = None) -> ApiError:
        if e.kind == "connect_timeout":
            why = (f"cannot reach the master at {self.addr}: no connection within {self.connect_timeout_s:g} s; "
                   f"{START_HINT}")
        elif e.kind == "timeout":
            waited = self.timeout_s if read_timeout_s is None else read_timeout_s
            why = f"no answer from the master at {self.addr} within {waited:g} s"
        else:
            why = f"cannot reach the master at {self.addr}: {_reason(e)}; {START_HINT}"
        error = ApiError(why, SERVER)
        error.__cause__ = e
        return error

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """The reply's JSON; raises ApiError (a reply that is not JSON is a server error)."""
        response = self.request(method, path, **kw)
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"the master's reply to {method} {path} is not JSON: {response.text[:100]!r}",
                           SERVER, response.status_code) from None

    def text(self, method: str, path: str, **kw: Any) -> str:
        return self.request(method, path, **kw).text

    def lines(self, path: str, params: Any = None, read_timeout_s: float | None = None) -> Iterator[str]:
        """The lines of a streamed ``GET /api/v1PATH`` answer as they come (blank keep-alive lines
        left out); ends when the master ends the stream, or when no line came for ``read_timeout_s``
        (None: wait as long as it takes)."""
        from corral.client.http1 import Answer, target

        headers = self._headers(None, False)
        try:
            for _ in range(8):  # a follower's 307 names the leader; a few hops at most
                url = "".join(target(self.addr + "/api/v1" + path, params))
                with self._http().stream(url, headers, read_timeout_s) as response:
                    if response.status_code == 307 and response.headers.get("location"):
                        self.addr = _origin(response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        whole = Answer(response.status_code, response.headers, response.read())
                        raise from_response(whole.status_code, _json_or_none(whole), whole.text)
                    for line in response.lines():
                        text = line.decode("utf-8", "replace")
                        if text.strip():
                            yield text
                    return
            raise ApiError(f"the masters kept redirecting {path} (no leader answered)", SERVER, 307)
        except NoAnswer as e:
            if e.kind == "timeout" and read_timeout_s is not None:
                return
            raise self._no_answer(e, read_timeout_s) from e


def _json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_address(addr: str) -> None:
    """Raise ApiError (bad input) unless ``addr`` is an http(s) URL with a host and a valid port."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(addr)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in addr
        parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        ok = False
    if not ok:
        raise ApiError(f"bad master address {addr!r}: expected http://HOST:PORT (CORRAL_ADDR or the CLI config)",
                       BAD_INPUT)


def _reason(e: NoAnswer) -> str:
    text = e.reason
    if "refused" in text.lower():
        return "connection refused"
    return one_line(text)
