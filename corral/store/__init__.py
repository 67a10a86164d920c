"""Write-ahead log + checkpoints: ``open_store("sqlite:///path")``, ``open_store("etcd://h:p,h:p")`` or
``open_store("memory://")``."""

from __future__ import annotations

from typing import Any

from corral.store.base import Store, StoreCompacted, StoreError
from corral.store.memory import MemoryStore


def open_store(url: str, tls: Any = None) -> Store:
    """Open a store from its URL: ``sqlite:///abs/path.db``, ``sqlite://rel/path.db``,
    ``etcd://host:port[,host:port...][/prefix]`` or ``memory://``. ``tls`` (a corral.tls.TlsFiles):
    etcd over TLS, verified against its CA, this certificate presented (the others ignore it)."""
    if url.startswith("memory:"):
        return MemoryStore()
    if url.startswith("sqlite://"):
        from corral.store.sqlite import SqliteStore

        path = url[len("sqlite://"):]
        if not path:
            raise StoreError("expected sqlite:///path/to/file.db")
        return SqliteStore(path)
    if url.startswith("etcd://"):
        from corral.store.etcd import EtcdStore
        from corral.store.etcd_endpoints import parse_endpoints

        endpoints, prefix = parse_endpoints(url[len("etcd://"):])
        try:
            return EtcdStore(endpoints, prefix, tls=tls)
        except ImportError:
            raise StoreError("the etcd store needs the aetcd package: pip install 'corral[etcd]'") from None
    raise StoreError("expected a store URL like sqlite:///path/to/state.db, etcd://127.0.0.1:2379 or memory://, "
                     f"got {url!r}")


__all__ = ["MemoryStore", "Store", "StoreCompacted", "StoreError", "open_store"]
