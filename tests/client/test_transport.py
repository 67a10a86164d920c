"""corral.client's one HTTP path: error lines and field errors from the master's error body, exit codes,
retries."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from corral.client.errors import BAD_INPUT, SERVER, ApiError, FieldError, error_message
from corral.client.transport import Transport as MasterClient

MESSAGES = [
    ("the message field is the line", 400,
     {"error": "invalid", "message": "resources.memory: bad quantity", "errors": [{"field": "x", "message": "y"}]},
     "resources.memory: bad quantity"),
    ("without a message the errors are joined with their fields", 400,
     {"error": "invalid", "errors": [{"field": "name", "message": "required"}, {"field": "tasks", "message": ">= 1"}]},
     "name: required; tasks: >= 1"),
    ("an error without a field is its message alone", 403, {"errors": [{"message": "not yours"}]}, "not yours"),
    ("only an error kind names the status and the kind", 404, {"error": "not_found"}, "HTTP 404: not_found"),
    ("a body that is not JSON shows its start", 502, None, "HTTP 502: <html>bad gateway</html>"),
    ("a multi-line message becomes one line", 409, {"message": "first\n  second"}, "first second"),
]


@pytest.mark.parametrize("what,status,body,expected", MESSAGES, ids=[m[0] for m in MESSAGES])
def test_the_error_line_comes_from_the_masters_error_body(what, status, body, expected):
    assert error_message(status, body, "<html>bad gateway</html>" if body is None else json.dumps(body)) == expected


class _Handler(BaseHTTPRequestHandler):
    flaky: dict[str, int] = {}  # path -> how many more 503s it answers before a 200

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        status = int(self.path.rsplit("/", 1)[1])
        if self.path.startswith("/api/v1/flaky/"):
            left = _Handler.flaky.get(self.path, 0)
            _Handler.flaky[self.path] = left - 1
            status = 503 if left > 0 else 200
        seen = self.headers.get("Authorization", "")
        body = (json.dumps({"ok": True, "auth": seen}) if status == 200 else
                json.dumps({"error": "x", "message": f"refused with {status}"}) if status < 500 else "oops")
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 500 else "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


CODES = [
    ("a 4xx is bad input, exit 2", 404, BAD_INPUT, "refused with 404"),
    ("a 409 is bad input, exit 2", 409, BAD_INPUT, "refused with 409"),
    ("a 5xx is the server's failure, exit 1", 503, SERVER, "HTTP 503: oops"),
]


@pytest.mark.parametrize("what,status,code,line", CODES, ids=[c[0] for c in CODES])
def test_a_refused_request_raises_its_line_and_exit_code(server, what, status, code, line):
    with MasterClient(server, "tok") as client:
        with pytest.raises(ApiError) as e:
            client.call("GET", f"/echo/{status}")
    assert (e.value.code, e.value.status, e.value.message) == (code, status, line)


def test_an_answer_is_its_json_and_the_token_is_sent_as_a_bearer_token(server):
    with MasterClient(server, "tok") as client:
        assert client.call("GET", "/echo/200") == {"ok": True, "auth": "Bearer tok"}


def test_an_unreachable_master_is_exit_1_and_says_how_to_start_one():
    with MasterClient("http://127.0.0.1:9", "tok", connect_timeout_s=2.0) as client:
        with pytest.raises(ApiError) as e:
            client.call("GET", "/jobs", retries=1)
    assert e.value.code == SERVER and e.value.status == 0
    assert "cannot reach the master at http://127.0.0.1:9" in e.value.message
    assert "`corral up`" in e.value.message and "`corral master`" in e.value.message
    assert "\n" not in e.value.message


BAD_SETTINGS = [
    ("an address that is not a URL", "http://:::", "tok", "bad master address 'http://:::'"),
    ("an address of another protocol", "ftp://x", "tok", "bad master address 'ftp://x'"),
    ("a port out of range", "127.0.0.1:99999", "tok", "bad master address 'http://127.0.0.1:99999'"),
    ("a token a header cannot carry", "127.0.0.1:9", "jeton-é", "the token has characters"),
]


@pytest.mark.parametrize("what,addr,token,line", BAD_SETTINGS, ids=[b[0] for b in BAD_SETTINGS])
def test_bad_client_settings_are_bad_input_before_any_request(what, addr, token, line):
    with pytest.raises(ApiError) as e:
        MasterClient(addr, token)
    assert e.value.code == BAD_INPUT and line in e.value.message


def test_an_address_without_a_scheme_means_http_and_a_trailing_slash_is_dropped():
    assert MasterClient("127.0.0.1:7100/", "t").addr == "http://127.0.0.1:7100"


def test_a_refusal_carries_its_kind_and_field_errors():
    from corral.client.errors import from_response

    e = from_response(400, {"error": "invalid", "message": "m", "errors": [{"field": "tasks", "message": ">= 1"}]})
    assert (e.kind, e.errors, e.field("tasks"), e.code) == ("invalid", [FieldError("tasks", ">= 1")], ">= 1", BAD_INPUT)


def test_a_503_is_tried_again_when_retries_allow_and_answers_once_the_master_does(server):
    _Handler.flaky["/api/v1/flaky/200"] = 2
    with MasterClient(server, "tok", backoff_s=0.01) as client:
        with pytest.raises(ApiError) as e:
            client.call("GET", "/flaky/200", retries=1)
        assert e.value.status == 503
        assert client.call("GET", "/flaky/200", retries=1)["ok"] is True


def test_a_transport_of_several_masters_follows_a_followers_redirect_with_the_same_headers():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Leader(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append((self.headers["Authorization"], self.headers["X-Request-Id"]))
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"job": "a.u"}')

        def log_message(self, *args):
            pass

    leader = HTTPServer(("127.0.0.1", 0), Leader)

    class Follower(Leader):
        def do_POST(self):  # noqa: N802
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{leader.server_port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    follower = HTTPServer(("127.0.0.1", 0), Follower)
    for server in (leader, follower):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        addrs = f"http://127.0.0.1:{follower.server_port},http://127.0.0.1:{leader.server_port}"
        with MasterClient(addrs, "tok") as client:
            assert client.call("POST", "/jobs", json={}, headers={"X-Request-Id": "r1"}) == {"job": "a.u"}
            assert client.addr.endswith(f":{leader.server_port}")  # and it stays with the leader
        assert seen == [("Bearer tok", "r1")]
    finally:
        leader.shutdown()
        follower.shutdown()


def _one_master(status: int, seen: list, body: bytes = b'{"job": "a.u"}'):
    """A stand-in master on 127.0.0.1 answering every POST/GET with ``status``; ``seen`` gets
    (port, method, X-Request-Id) per request."""
    class Master(BaseHTTPRequestHandler):
        def _answer(self):
            seen.append((self.server.server_port, self.command, self.headers.get("X-Request-Id")))
            if self.headers.get("Content-Length"):
                self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Master)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_submit_goes_on_to_the_next_master_with_the_same_request_id_when_one_has_no_leader():
    from corral.client import Client

    seen: list = []
    no_leader = _one_master(503, seen, b'{"error": "no_leader", "message": "no leader elected yet"}')
    leader = _one_master(201, seen)
    try:
        addrs = f"http://127.0.0.1:{no_leader.server_port},http://127.0.0.1:{leader.server_port}"
        with Client(addrs, "tok", typed=False, failover_s=5.0) as client:
            assert client.submit({"name": "a"}, request_id="r7") == {"job": "a.u"}
        assert seen == [(no_leader.server_port, "POST", "r7"), (leader.server_port, "POST", "r7")]
    finally:
        no_leader.shutdown()
        leader.shutdown()


def test_a_read_skips_a_master_that_does_not_answer_and_a_lone_post_is_not_repeated():
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    seen: list = []
    alive = _one_master(200, seen, b'{"ok": true}')
    try:
        with MasterClient(f"127.0.0.1:{dead},127.0.0.1:{alive.server_port}", "tok", failover_s=5.0) as client:
            assert client.call("GET", "/jobs") == {"ok": True}
            assert client.addr == f"http://127.0.0.1:{alive.server_port}"
        with MasterClient(f"127.0.0.1:{dead},127.0.0.1:{alive.server_port}", "tok", failover_s=5.0) as client:
            with pytest.raises(ApiError) as e:  # no retries: a POST that may have landed is not sent again
                client.call("POST", "/jobs/x/kill")
            assert e.value.code == SERVER and "cannot reach the master" in e.value.message
        assert seen == [(alive.server_port, "GET", None)]
    finally:
        alive.shutdown()


def test_several_addresses_are_each_checked():
    with pytest.raises(ApiError) as e:
        MasterClient("127.0.0.1:7100, nohost:x", "t")
    assert e.value.code == BAD_INPUT and "nohost:x" in e.value.message
    assert MasterClient("127.0.0.1:7100, 127.0.0.1:7101/", "t").addrs == ["http://127.0.0.1:7100",
                                                                          "http://127.0.0.1:7101"]
