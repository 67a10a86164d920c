"""A network namespace for a test, reached from here through one veth pair, whose route to one
address can be cut; the namespace and the veth pair go with ``delete()``.

Addresses are ``10.213.N.0/24`` with N from the process id: ``.1`` and ``.5`` on this side (the
test reaches the namespace from ``.1``; ``.5`` is what the namespace may lose), ``.2`` inside.
``cut()`` adds a blackhole route for ``.5`` inside the namespace: packets to it are dropped
there (a partition, not a refused connection), everything else still flows.
"""

from __future__ import annotations

import os
import subprocess

import pytest


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=check)


class CutNamespace:
    def __init__(self) -> None:
        n = os.getpid() % 250 + 1
        self.name = f"corral-cut-{os.getpid()}"
        self.outside, self.inside = f"cch{os.getpid() % 100000}", f"ccn{os.getpid() % 100000}"
        self.host, self.far, self.addr = f"10.213.{n}.1", f"10.213.{n}.5", f"10.213.{n}.2"

    def create(self) -> "CutNamespace":
        """Make it, or skip the test saying why network namespaces are not available here."""
        if os.geteuid() != 0:
            pytest.skip("network namespaces need root (CAP_NET_ADMIN)")
        made = _ip("netns", "add", self.name, check=False)
        if made.returncode != 0:
            pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
        try:
            _ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside, "netns", self.name)
            _ip("addr", "add", f"{self.host}/24", "dev", self.outside)
            _ip("addr", "add", f"{self.far}/24", "dev", self.outside)
            _ip("link", "set", self.outside, "up")
            self.run("ip", "addr", "add", f"{self.addr}/24", "dev", self.inside)
            self.run("ip", "link", "set", self.inside, "up")
            self.run("ip", "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *command], capture_output=True, text=True,
                              timeout=10, check=True)

    def prefix(self) -> list[str]:
        """What runs a command inside: ``[*ns.prefix(), "python", ...]``."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """From now on nothing inside reaches ``far``."""
        self.run("ip", "route", "add", "blackhole", f"{self.far}/32")

    def delete(self) -> None:
        _ip("link", "del", self.outside, check=False)  # its peer inside goes with it
        _ip("netns", "del", self.name, check=False)

    def exists(self) -> bool:
        return self.name in _ip("netns", "list", check=False).stdout or \
            self.outside in _ip("link", "show", check=False).stdout
