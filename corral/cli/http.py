"""The one way the CLI talks to a master's HTTP API.

:class:`MasterClient` is a base URL, a bearer token and a timeout. ``call``
returns the reply's JSON (``text`` its body) or raises :class:`ApiError`
with one line to show and the exit code to leave with:

* **2, bad input**: the master refused the request (a 4xx: a spec that does
  not validate, an unknown job, a forbidden change), or the CLI has no
  address or token to use;
* **1, the server**: the master is unreachable, timed out, or failed (5xx).
  An unreachable master's line says how to start one (``corral up`` for a
  whole local cell, ``corral master`` for the master alone).

The line comes from the master's error body, ``{"error", "message",
"errors": [{"field", "message"}]}``: its ``message``, else its ``errors``
joined, else its ``error`` kind, else the HTTP status.

:func:`api` is what a command calls: the client from the CLI config
(``corral.cli.config.client_settings``), and on an ApiError one line on
stderr, ``corral COMMAND: ...``, and the exit code.
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

BAD_INPUT, SERVER = 2, 1
START_HINT = "is a master running? start a local cell with `corral up`, or a master alone with `corral master`"


class ApiError(Exception):
    """A request that did not succeed: ``message`` (one line), ``code`` (the exit code: 2 bad input,
    1 server or connection), ``status`` (the HTTP status; 0 when no answer came)."""

    def __init__(self, message: str, code: int, status: int = 0):
        super().__init__(message)
        self.message, self.code, self.status = one_line(message), code, status


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _import_httpx():
    # Imported on first use: a command that fails before its request does not pay for it.
    # (corral.cli.main keeps httpx from importing its own command-line client.)
    import httpx

    return httpx


def error_message(status: int, body: Any, text: str = "") -> str:
    """The one line a master's error reply means (see the module docstring)."""
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message.strip():
            return one_line(message)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts = []
            for e in errors:
                if isinstance(e, dict):
                    field, msg = e.get("field"), e.get("message", "")
                    parts.append(f"{field}: {msg}" if field else str(msg))
                else:
                    parts.append(str(e))
            return one_line("; ".join(parts))
        kind = body.get("error")
        if isinstance(kind, str) and kind:
            return f"HTTP {status}: {kind}"
    snippet = one_line(text)[:200]
    return f"HTTP {status}" + (f": {snippet}" if snippet else "")


class MasterClient:
    """Requests to a cell's masters: ``addr`` (``http://host:port``; a bare ``host:port`` means
    http; several, comma-separated, for a replicated master) and ``token`` (sent as a bearer
    token). Connections are pooled for the client's life; ``close()``.

    With several masters: a follower's 307 is followed to the leader it names (with the same
    headers, so a submit keeps its request id), and a master that does not answer or has no
    leader yet (503) is left for the next one, for at most ``failover_s``."""

    def __init__(self, addr: str, token: str, timeout_s: float = 30.0, connect_timeout_s: float = 5.0,
                 failover_s: float = 15.0, ca: str | None = None):
        self.addrs = [a if "://" in a else "http://" + a for a in
                      (part.strip().rstrip("/") for part in str(addr).split(",")) if a]
        self.addr = self.addrs[0] if self.addrs else str(addr)
        self.token, self.timeout_s, self.connect_timeout_s = str(token), timeout_s, connect_timeout_s
        self.failover_s, self.ca = failover_s, ca  # ca: the cell's CA certificate (verify https masters)
        self._client: Any = None
        for one in self.addrs or [self.addr]:
            _check_address(one)
        if not self.token.isascii() or not self.token.isprintable():
            raise ApiError("the token has characters an HTTP header cannot carry (expected printable ASCII)",
                           BAD_INPUT)

    def _http(self) -> Any:
        if self._client is None:
            httpx = _import_httpx()
            # A plain-http master (a local cell) never does a TLS handshake on this client: its base
            # URL is http and redirects are not followed. Not verifying there spares loading the CA
            # bundle (13 ms of a client command's start); an https master is verified as usual.
            plain = all(a.startswith("http://") for a in self.addrs)
            verify: Any = not plain
            if self.ca and not plain:
                import ssl

                verify = ssl.create_default_context(cafile=self.ca)
            self._client = httpx.Client(
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s), trust_env=False,
                verify=verify, follow_redirects=False)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> "MasterClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, path: str, json: Any = None, params: Any = None,
                headers: dict[str, str] | None = None, retries: int = 0) -> Any:
        """The response (an ``httpx.Response`` with a status below 400) to ``METHOD /api/v1PATH``.
        ``retries``: how many more times to try when no answer came (only for idempotent requests);
        raises ApiError."""
        httpx = _import_httpx()
        client = self._http()
        last: Exception | None = None
        tries = retries + 1
        deadline = time.monotonic() + self.failover_s
        while True:
            try:
                response = client.request(method, self.addr + "/api/v1" + path, json=json, params=params,
                                          headers=headers)
                if response.status_code == 307 and response.headers.get("location"):
                    self.addr = _origin(response.headers["location"])  # a follower names the leader
                    if time.monotonic() < deadline:
                        continue
                    raise ApiError(f"the masters kept redirecting for {self.failover_s:g} s (no leader answered)",
                                   SERVER, 307)
                if not (response.status_code == 503 and len(self.addrs) > 1 and time.monotonic() < deadline):
                    break
                why = error_message(503, _json_or_none(response), response.text)
            except httpx.ConnectTimeout as e:
                last = e
                why = (f"cannot reach the master at {self.addr}: no connection within {self.connect_timeout_s:g} s; "
                       f"{START_HINT}")
            except httpx.TimeoutException as e:
                last = e
                why = f"no answer from the master at {self.addr} within {self.timeout_s:g} s"
            except httpx.HTTPError as e:
                last = e
                why = f"cannot reach the master at {self.addr}: {_reason(e)}; {START_HINT}"
            tries -= 1
            if len(self.addrs) > 1 and (retries > 0 or method == "GET") and time.monotonic() < deadline:
                self._next_master()  # another master may lead by now
                time.sleep(0.05)
                continue
            if tries <= 0:
                raise ApiError(why, SERVER) from last
        if response.status_code >= 400:
            raise ApiError(error_message(response.status_code, _json_or_none(response), response.text),
                           BAD_INPUT if response.status_code < 500 else SERVER, response.status_code)
        return response

    def _next_master(self) -> None:
        at = self.addrs.index(self.addr) if self.addr in self.addrs else -1
        self.addr = self.addrs[(at + 1) % len(self.addrs)]

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


def _json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _check_address(addr: str) -> None:
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


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    if "refused" in text.lower():
        return "connection refused"
    return one_line(text)


def die(command: str, message: str, code: int = BAD_INPUT) -> NoReturn:
    """One line on stderr, ``corral COMMAND: message``, and exit ``code``."""
    import typer

    typer.echo(f"corral {command}: {one_line(message)}", err=True)
    raise typer.Exit(code)


def client_for(command: str) -> MasterClient:
    """The client the CLI config names (``CORRAL_ADDR``/``CORRAL_TOKEN`` or the config file); a
    missing address or token is one line and exit 2."""
    from corral.cli.config import ClientConfigError, client_ca, client_settings

    try:
        addr, token = client_settings()
        return MasterClient(addr, token, ca=client_ca())
    except ClientConfigError as e:
        die(command, str(e))
    except ApiError as e:
        die(command, e.message, e.code)


def api(command: str, method: str, path: str, **kw: Any) -> Any:
    """``MasterClient.call`` with the CLI's client; an ApiError is one line and its exit code."""
    return _with_client(command, lambda client: client.call(method, path, **kw))


def api_text(command: str, method: str, path: str, **kw: Any) -> str:
    """Like :func:`api` for a reply that is plain text (a task's logs)."""
    return _with_client(command, lambda client: client.text(method, path, **kw))


def _with_client(command: str, call: Any) -> Any:
    with client_for(command) as client:
        try:
            return call(client)
        except ApiError as e:
            die(command, e.message, e.code)
