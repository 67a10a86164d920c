"""corral.client.http1, the client's wire (a socket and httptools): kept connections (and one the
server closed meanwhile), query encoding, streamed lines and their read time-out, what a failure
before an answer says."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from corral.client.http1 import Connections, NoAnswer, target


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked answers for /stream
    peers: list = []  # (client port, path) per request

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        _Handler.peers.append((self.client_address[1], self.path))
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one\n", b"tw", b"o\n\n", b"three\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            if self.path == "/stream/stall":
                time.sleep(1.0)  # then no more lines for longer than the reader waits
            self.wfile.write(b"0\r\n\r\n")
            return
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    _Handler.peers = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _plain() -> Connections:
    return Connections(5.0, 2.0, ssl_context=lambda: pytest.fail("no TLS for an http origin"))


def test_requests_to_one_origin_share_a_kept_connection(server):
    conns = _plain()
    try:
        assert conns.exchange("GET", server + "/a", None, {}).text == "/a"
        assert conns.exchange("GET", server + "/b", None, {}).text == "/b"
    finally:
        conns.close()
    assert [p for p, _ in _Handler.peers][0] == [p for p, _ in _Handler.peers][1]


def test_an_answer_that_closes_its_connection_is_followed_by_a_new_one(server):
    conns = _plain()
    try:
        assert conns.exchange("GET", server + "/close", None, {}).status_code == 200
        assert conns.exchange("GET", server + "/after", None, {}).text == "/after"
    finally:
        conns.close()
    assert _Handler.peers[0][0] != _Handler.peers[1][0]


def test_a_kept_connection_the_server_closed_meanwhile_is_replaced_without_an_error():
    """A server that closes every connection after one answer, without saying so: the second
    request finds its kept connection closed and goes out once more on a new one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    served = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.recv(65536)
            served.append(1)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    conns = _plain()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    try:
        assert conns.exchange("GET", url, None, {}).text == "ok"
        time.sleep(0.3)  # the server has closed it by now
        assert conns.exchange("GET", url, None, {}).text == "ok"
    finally:
        conns.close()
        listener.close()
    assert len(served) == 2


def test_query_parameters_are_encoded_as_httpx_did():
    origin, path = target("http://h:1/api/v1/tasks/a b", {"label": ["zone=a", "rack=r1"], "watch": True,
                                                          "tail": 100, "x": False})
    assert origin == "http://h:1"
    assert path == "/api/v1/tasks/a%20b?label=zone%3Da&label=rack%3Dr1&watch=true&tail=100&x=false"
    assert target("http://h:1/jobs?limit=5", {"user": "al"})[1] == "/jobs?limit=5&user=al"


def test_a_streamed_answer_comes_line_by_line_from_its_chunks(server):
    conns = _plain()
    with conns.stream(server + "/stream", {}, read_timeout_s=5.0) as answer:
        assert answer.status_code == 200
        assert list(answer.lines()) == [b"one", b"two", b"", b"three"]


def test_a_stream_that_stalls_past_its_read_timeout_raises_a_timeout(server):
    conns = _plain()
    with conns.stream(server + "/stream/stall", {}, read_timeout_s=0.3) as answer:
        lines = answer.lines()
        assert [next(lines) for _ in range(4)] == [b"one", b"two", b"", b"three"]
        with pytest.raises(NoAnswer) as e:
            next(lines)
    assert e.value.kind == "timeout"


def test_a_refused_connection_is_a_failure_before_anything_was_sent():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(NoAnswer) as e:
        _plain().exchange("GET", f"http://127.0.0.1:{port}/", None, {})
    assert (e.value.kind, e.value.sent) == ("failed", False) and "refused" in e.value.reason.lower()


def test_a_server_that_accepts_and_never_answers_is_a_read_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        conns = Connections(0.3, 2.0, ssl_context=lambda: None)
        with pytest.raises(NoAnswer) as e:
            conns.exchange("GET", f"http://127.0.0.1:{listener.getsockname()[1]}/", None, {})
        assert (e.value.kind, e.value.sent) == ("timeout", True)
    finally:
        listener.close()


def test_an_answer_larger_than_the_limit_is_refused_not_read_whole(server, monkeypatch):
    import corral.client.http1 as http1

    monkeypatch.setattr(http1, "MAX_ANSWER", 3)
    with pytest.raises(NoAnswer) as e:
        _plain().exchange("GET", server + "/longer-than-three", None, {})
    assert e.value.kind == "failed" and "over 3 bytes" in e.value.reason


def test_a_body_that_ends_with_its_connection_is_read_whole():
    """An HTTP/1.0 answer without a length: its body is what came before the server closed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ok\": ")
        time.sleep(0.05)
        conn.sendall(b"true}")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        answer = _plain().exchange("GET", f"http://127.0.0.1:{listener.getsockname()[1]}/", None, {})
        assert answer.json() == {"ok": True}
    finally:
        listener.close()
