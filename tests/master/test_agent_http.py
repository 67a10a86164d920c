"""The link's HTTP client for agents (corral/master/agent_http.py) against real sockets on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import httpx
import pytest

from corral.master.agent_http import AgentHttp


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None, chunked: bool = False):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_GET(self):
        self.seen.append(("GET", self.path, self.headers.get("Authorization")))
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        body = json.dumps({"path": self.path}).encode()
        self._answer(200, body, {"Connection": "close"} if self.path == "/close" else None,
                     chunked=self.path == "/chunked")
        if self.path == "/bye":
            self.close_connection = True  # closes without saying so, as an expired keep-alive does

    def do_PUT(self):
        length = int(self.headers.get("Content-Length", 0))
        got = json.loads(self.rfile.read(length))
        self.seen.append(("PUT", self.path, got))
        self._answer(201, json.dumps({"got": got}).encode())


@pytest.fixture
def server():
    Handler.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_one_connection_carries_many_requests_with_headers_params_and_json(server):
    _, url = server
    with AgentHttp(timeout_s=2.0) as client:
        r = client.request("GET", f"{url}/v1/state", headers={"Authorization": "Bearer t"},
                           params={"since": "3", "incarnation": "i 1"})
        assert r.status_code == 200 and r.json() == {"path": "/v1/state?since=3&incarnation=i+1"}
        assert r.headers["content-type"] == "application/json"
        r = client.request("PUT", f"{url}/v1/tasks/0.web.alice.local", json={"generation": 2})
        assert r.status_code == 201 and r.json() == {"got": {"generation": 2}}
        for _ in range(5):
            assert client.request("GET", f"{url}/again").status_code == 200
        assert client.connects == 1
    assert Handler.seen[0] == ("GET", "/v1/state?since=3&incarnation=i+1", "Bearer t")


def test_chunked_answers_are_read_whole(server):
    _, url = server
    with AgentHttp() as client:
        assert client.request("GET", f"{url}/chunked").json() == {"path": "/chunked"}
        assert client.request("GET", f"{url}/chunked").text == '{"path": "/chunked"}'
        assert client.connects == 1


def test_an_answer_that_says_close_is_not_kept(server):
    _, url = server
    with AgentHttp() as client:
        client.request("GET", f"{url}/close")
        client.request("GET", f"{url}/next")
        assert client.connects == 2


def test_a_kept_connection_the_agent_closed_meanwhile_is_replaced_without_an_error(server):
    _, url = server
    with AgentHttp() as client:
        client.request("GET", f"{url}/bye")
        time.sleep(0.1)  # the agent's FIN arrives while the connection is idle
        assert client.request("GET", f"{url}/two").json() == {"path": "/two"}
        assert client.connects == 2


def test_an_agent_that_is_gone_is_a_connect_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    with AgentHttp(timeout_s=1.0) as client:
        with pytest.raises(httpx.ConnectError):
            client.request("GET", f"http://127.0.0.1:{port}/v1/state")


def test_an_agent_that_does_not_answer_in_time_is_a_read_timeout(server):
    _, url = server
    with AgentHttp(timeout_s=0.3) as client:
        began = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.request("GET", f"{url}/slow")
        assert time.monotonic() - began < 1.4
        assert client.request("GET", f"{url}/after").status_code == 200  # a new connection


def test_an_address_that_is_not_http_is_refused():
    with AgentHttp() as client, pytest.raises(httpx.UnsupportedProtocol):
        client.request("GET", "ftp://127.0.0.1/v1/state")
