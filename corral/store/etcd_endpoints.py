"""etcd's addresses: a store URL's endpoints and prefix, and the one gRPC target for several members."""

from __future__ import annotations

from corral.store.base import StoreError


def parse_endpoints(text: str) -> tuple[list[str], str]:
    """``host:port,host:port[/prefix]`` → (endpoints, prefix ending in ``/``)."""
    hosts, _, prefix = text.partition("/")
    endpoints = [h.strip() for h in hosts.split(",") if h.strip()]
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise StoreError(f"expected etcd endpoints like etcd://127.0.0.1:2379,127.0.0.1:22379, got {endpoint!r}")
    if not endpoints:
        raise StoreError("expected etcd://host:port[,host:port...][/prefix]")
    prefix = "/" + (prefix.strip("/") or "corral") + "/"
    return endpoints, prefix


def grpc_target(endpoints: list[str]) -> tuple[str, int]:
    """aetcd dials ``f"{host}:{port}"``; several IPv4 members become one gRPC ``ipv4:`` target
    (gRPC's own list of addresses, balanced round robin, skipping dead members)."""
    if len(endpoints) == 1:
        host, _, port = endpoints[0].rpartition(":")
        return host, int(port)
    first, _, port = endpoints[-1].rpartition(":")
    return "ipv4:" + ",".join(endpoints[:-1] + [first]), int(port)
