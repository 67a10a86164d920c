"""A small DNS responder for the master's names (Borg serves BNS through DNS).

Answers UDP queries for the cell's zone from the master's state (read under
its lock, through :func:`corral.master.names.lookup`), with dnspython doing
the wire format:

- ``A`` of ``INDEX.JOB.USER.CELL``: the task's machine; of ``JOB.USER.CELL``:
  the machines of all its running tasks;
- ``SRV`` of ``_PORT._tcp.INDEX.JOB.USER.CELL`` / ``_PORT._tcp.JOB.USER.CELL``:
  ``0 0 <port> INDEX.JOB.USER.CELL.`` per running task with a port named PORT,
  with the target's A record in the additional section.

Records carry a short TTL (names change as tasks move). A name of the zone
that names nothing is NXDOMAIN; a known name with no running task answers
NOERROR with no records; a name outside the zone is REFUSED. An answer too
big for the client's UDP size is sent truncated (TC) with no records. This is
the service layer: the master core never sees a socket.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from corral.master.names import Answer, lookup

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 5


class NameServer:
    """Serves ``master``'s names over UDP on ``host:port`` (port 0: any free port) from a thread."""

    def __init__(self, master: Any, host: str = "127.0.0.1", port: int = 0, ttl_s: int = DEFAULT_TTL_S):
        self.master, self.ttl = master, int(ttl_s)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)  # how quickly stop() is noticed
        self.host, self.port = self.sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "NameServer":
        self._thread = threading.Thread(target=self._serve, name="corral-master-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.sock.close()

    def __enter__(self) -> "NameServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                reply = self.answer(data)
            except Exception:  # a bug: log it, keep serving the others
                log.exception("dns: could not answer a query from %s", peer)
                continue
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError as e:
                    log.warning("dns: could not reply to %s: %s", peer, e)

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to one query in wire format (None for something that is not a query)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.flags & dns.flags.QR:
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        reply.flags &= ~dns.flags.RA
        if len(query.question) != 1:
            reply.set_rcode(dns.rcode.FORMERR)
            return reply.to_wire()
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        zone = dns.name.from_text(self.master.core.state.cell)
        if not qname.is_subdomain(zone):
            reply.set_rcode(dns.rcode.REFUSED)
            return reply.to_wire()
        with self.master.lock:
            found = lookup(self.master.core.state, qname.to_text())
        if found is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply.to_wire()
        self._records(reply, qname, qtype, found)
        limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return reply.to_wire(max_size=limit)
        except dns.exception.TooBig:
            reply.answer, reply.additional = [], []
            reply.flags |= dns.flags.TC
            return reply.to_wire()

    def _records(self, reply: dns.message.Message, qname: dns.name.Name, qtype: int, found: Answer) -> None:
        ttl, IN = self.ttl, dns.rdataclass.IN
        if found.service is None and qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            addresses = sorted({e.address for e in found.endpoints if e.address})
            if addresses:
                reply.answer.append(dns.rrset.from_text_list(qname, ttl, IN, dns.rdatatype.A, addresses))
        elif found.service is not None and qtype in (dns.rdatatype.SRV, dns.rdatatype.ANY):
            targets = [e for e in found.endpoints if found.service in e.ports]
            if targets:
                srv = [f"0 0 {e.ports[found.service]} {e.task.lower()}." for e in targets]
                reply.answer.append(dns.rrset.from_text_list(qname, ttl, IN, dns.rdatatype.SRV, srv))
                for e in targets:
                    if e.address:
                        reply.additional.append(dns.rrset.from_text(f"{e.task.lower()}.", ttl, IN,
                                                                    dns.rdatatype.A, e.address))
