"""Certificates carry their role; a client that wants a master's refuses any other cell certificate
before it sends a byte (blocking and asyncio clients alike)."""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading

import httpx
import pytest

from corral.tls import TlsError, init_ca, issue
from corral.tls_roles import check_role, role_of


class _Ok(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _Ok.seen.append(self.headers.get("authorization", ""))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve(tmp_path):
    """``serve(files)``: an HTTPS server on 127.0.0.1 presenting ``files``' certificate; its URL."""
    servers = []

    def start(files) -> str:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(files.cert), str(files.key))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"https://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_certificate_names_its_role_and_an_unknown_role_is_refused(tmp_path):
    from cryptography import x509

    init_ca(tmp_path)
    for role in ("master", "agent", "etcd"):
        files = issue(tmp_path, f"x-{role}", role=role)
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        assert cert.subject.rfc4514_string() == f"OU={role},CN=x-{role}"
    with pytest.raises(TlsError, match="role: expected one of master, agent, etcd, got 'admin'"):
        issue(tmp_path, "x", role="admin")
    peer = {"subject": ((("commonName", "m1"),), (("organizationalUnitName", "agent"),))}
    assert role_of(peer) == "agent" and role_of({}) is None
    check_role(peer, "agent")
    with pytest.raises(ssl.SSLCertVerificationError, match="'m1'.*for a 'agent', not a master's"):
        check_role(peer, "master")


def test_an_agent_refuses_a_server_whose_certificate_is_not_a_masters_before_sending_its_token(tmp_path, serve):
    init_ca(tmp_path)
    agent = issue(tmp_path, "m1", role="agent")
    impostor = serve(issue(tmp_path, "m2", role="agent"))  # a cell certificate, but an agent's
    master = serve(issue(tmp_path, "master", role="master"))
    _Ok.seen.clear()
    with httpx.Client(verify=agent.client_context("master")) as client:
        with pytest.raises(httpx.ConnectError, match="not a master's"):
            client.get(impostor + "/", headers={"Authorization": "Bearer secret"})
        assert _Ok.seen == []  # the token never left
        assert client.get(master + "/", headers={"Authorization": "Bearer secret"}).text == "ok"

    async def asynchronously() -> None:  # anyio's TLS (ssl.SSLObject) is checked the same way
        async with httpx.AsyncClient(verify=agent.client_context("master")) as client:
            with pytest.raises(httpx.ConnectError, match="not a master's"):
                await client.get(impostor + "/")
            assert (await client.get(master + "/")).text == "ok"

    asyncio.run(asynchronously())
    assert _Ok.seen == ["Bearer secret", ""]
