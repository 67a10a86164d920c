"""An agent with several masters posts to the leader: a follower's 307 is followed with the same
headers, a master that does not answer is left for the next one."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx

from corral.agent.masters import Masters, split_masters
from corral.store.etcd_cluster import free_port


def test_posts_find_the_leader_past_a_dead_master_and_a_follower():
    seen = []

    class Leader(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers["Authorization"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

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
        dead = f"http://127.0.0.1:{free_port()}"
        masters = Masters(f"{dead}, http://127.0.0.1:{follower.server_port}/")
        assert masters.urls[1] == f"http://127.0.0.1:{follower.server_port}"
        with httpx.Client(timeout=2.0) as client:
            r = masters.post(client, "/api/v1/agents/register", json={"name": "m1"},
                             headers={"Authorization": "Bearer a"})
        assert r.status_code == 200 and seen == [("/api/v1/agents/register", "Bearer a")]
        assert masters.current == f"http://127.0.0.1:{leader.server_port}"
    finally:
        leader.shutdown()
        follower.shutdown()


def test_master_lists_are_split_on_commas():
    assert split_masters("http://a:1/, http://b:2") == ["http://a:1", "http://b:2"]
