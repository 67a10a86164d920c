"""A cell's certificate authority and the TLS its masters, agents and CLI speak.

``init_ca(DIR)`` makes the cell's CA (``ca.pem``, ``ca-key.pem``: an EC P-256
key, ten years); ``issue(DIR, NAME, hosts, role)`` a certificate signed by it
whose common name is NAME (a master's name, an agent's machine name: the master
accepts an agent's registrations and notifications for that machine only, or
an etcd member's), whose organizational unit is its role (``master``, ``agent``
or ``etcd``: corral.tls_roles) and whose subject alternative names are
``hosts`` (IP addresses or DNS names). Every certificate serves and
authenticates (server and client auth): masters and agents verify each other
against the CA and check the other's role; the CLI verifies the master.

``PeerCertHttp`` is uvicorn's HTTP protocol that also puts the common name and
the role of the peer's verified client certificate into the ASGI scope
(``scope["extensions"]["tls"]["peer_name"]`` and ``["peer_role"]``; None
without one).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.tls_roles import ROLES, require_peer_role, role_of

CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"


class TlsError(ValueError):
    """A CA or certificate that cannot be made or read; the message says which file."""


def _write(path: Path, data: bytes, private: bool) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def init_ca(directory: str | Path, cell: str = "corral") -> Path:
    """Make the cell's CA in ``directory`` (refuses to replace one); the CA certificate's path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = Path(directory)
    if (directory / CA_CERT).exists() or (directory / CA_KEY).exists():
        raise TlsError(f"{directory} already holds a CA ({CA_CERT}); remove it or choose another directory")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cell} cell CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write(directory / CA_KEY, _key_pem(key), private=True)
    _write(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return directory / CA_CERT


def issue(directory: str | Path, name: str, hosts: list[str] | tuple[str, ...] = ("127.0.0.1",),
          days: int = 825, role: str = "agent") -> "TlsFiles":
    """A certificate for ``name`` (its common name) in ``role`` (its organizational unit: master,
    agent or etcd) valid for ``hosts``, signed by the CA in ``directory``; written beside it as
    ``NAME.pem`` and ``NAME-key.pem``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if role not in ROLES:
        raise TlsError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    directory = Path(directory)
    try:
        ca_cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        ca_key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    except (OSError, ValueError) as e:
        raise TlsError(f"cannot read the CA in {directory}: {e} (make one with `corral ca init {directory}`)") from None
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                     x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(directory / f"{name}.pem", directory / f"{name}-key.pem", directory / CA_CERT)
    _write(files.key, _key_pem(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return files


def common_name(peercert: dict | None) -> str | None:
    """The common name in ``ssl.SSLSocket.getpeercert()``'s answer, or None."""
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path

    def server_config(self, require_client_cert: bool) -> dict[str, Any]:
        """uvicorn.Config arguments: serve HTTPS, verify client certificates against the CA."""
        return {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key), "ssl_ca_certs": str(self.ca),
                "ssl_cert_reqs": ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL,
                "http": PeerCertHttp}

    def client_context(self, peer_role: str | None = None) -> ssl.SSLContext:
        """For httpx (``verify=``): verify the peer against the CA, present this certificate;
        with ``peer_role``, a peer whose certificate is not that role's fails the handshake."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return require_peer_role(context, peer_role) if peer_role else context


def _peer_cert_protocol() -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class PeerCertHttp(HttpToolsProtocol):
        peer_name: str | None = None
        peer_role: str | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peercert = transport.get_extra_info("peercert")
            self.peer_name, self.peer_role = common_name(peercert), role_of(peercert)

        def on_headers_complete(self) -> None:
            self.scope["extensions"] = {**self.scope.get("extensions", {}),
                                        "tls": {"peer_name": self.peer_name, "peer_role": self.peer_role}}
            super().on_headers_complete()

        def shutdown(self) -> None:
            # An idle keep-alive connection is dropped at once: a TLS close would wait for the
            # peer's close_notify, which a pooled client sends only when it next reads (the
            # server's shutdown would hang on it).
            if self.cycle is None or self.cycle.response_complete:
                self.transport.abort()
            else:
                super().shutdown()

    return PeerCertHttp


def peer_name(scope: dict) -> str | None:
    """The common name of the request's client certificate (served by PeerCertHttp), or None."""
    return ((scope.get("extensions") or {}).get("tls") or {}).get("peer_name")


def peer_role(scope: dict) -> str | None:
    """The role of the request's client certificate (served by PeerCertHttp), or None."""
    return ((scope.get("extensions") or {}).get("tls") or {}).get("peer_role")


PeerCertHttp = _peer_cert_protocol()


def check_peer(response: Any, machine: str) -> None:
    """Raise httpx.RequestError unless ``response`` came over TLS from a certificate naming
    ``machine`` (the master accepts an agent's reports for its own machine only)."""
    import httpx

    peer = response.extensions.get("peer_cert")  # corral.master.agent_http puts it there
    if peer is None and response.extensions.get("network_stream") is not None:  # an httpx.Client's answer
        ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
        peer = ssl_object.getpeercert() if ssl_object is not None else None
    named = common_name(peer)
    if named != machine or role_of(peer) != "agent":
        # response.url: an httpx.Response's and corral.master.agent_http.Reply's alike
        raise httpx.RequestError(f"the agent at {response.url} presents a certificate for {named!r} "
                                 f"(role {role_of(peer)!r}), not agent {machine!r}")
